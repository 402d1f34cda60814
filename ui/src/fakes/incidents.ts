// Incidents: playbooks, the log, and actions on the agents with their verified results.
import type { EntryKind } from '../gen/EntryKind';
import type { Incident } from '../gen/Incident';
import type { IncidentView } from '../gen/IncidentView';
import type { Playbook } from '../gen/Playbook';
import type { WhyBlocked } from '../gen/WhyBlocked';
import { HostError, type Host } from '../lib/host';
import type { FakeHost } from './index';

export interface IncidentsFake {
  incidentList: Incident[];
  /** Each incident's log, by id. */
  incidentLogs: Record<number, IncidentView['log']>;
  /** When set, blocks are refused with this reason. */
  blockRefused: string | null;
  /** Addresses known only from X-Forwarded-For: a block needs a second confirmation. */
  spoofableAddresses: string[];
  /** What a restart destroys, as the incident's service profile says (null: nothing). */
  restartLosesData: string | null;
  /** Where each address is blocked now (address → instances), for "why blocked". */
  blockedOn: Record<string, string[]>;
}

type IncidentsCalls = Pick<
  Host,
  | 'incidents'
  | 'incident'
  | 'openIncident'
  | 'incidentFromAlert'
  | 'incidentNote'
  | 'updateIncident'
  | 'incidentBlock'
  | 'incidentUnblock'
  | 'incidentRestart'
  | 'incidentWrites'
  | 'evidenceBundle'
  | 'exportIncidentReport'
  | 'incidentSnapshot'
  | 'incidentRestore'
  | 'snapshots'
  | 'whyBlocked'
  | 'unblockAddress'
  | 'blockEverywhere'
>;

/** Sekha's playbook as the core has it. */
export const SAMPLE_PLAYBOOK: Playbook = {
  name: 'sekha',
  title: 'Sekha security incident playbook',
  guide: 'Sekha security guide: Incident Response',
  steps: [
    { id: 'detection', title: 'Detection', look: 'Failed sign-ins by address.', decide: 'Which addresses are attacking?', actions: ['show_events'] },
    { id: 'containment', title: 'Containment', look: 'The attacking addresses.', decide: 'Block them; rotate the key if it may have leaked.', actions: ['block_ip', 'rotate_key', 'restart_service'] },
    { id: 'eradication', title: 'Eradication', look: 'Writes in the window.', decide: 'Malicious data to remove?', actions: ['show_writes'] },
    { id: 'recovery', title: 'Recovery', look: 'Whether the service answers.', decide: 'Restore from a clean snapshot?', actions: ['restore_database', 'restart_service', 'unblock_ip'] },
    { id: 'post_incident', title: 'Post-incident', look: 'The timeline.', decide: 'Root cause.', actions: ['evidence_bundle', 'report'] },
  ],
};

/** The snapshot the fake host's agent holds, named as the agent names them. */
const SNAPSHOT = '20261123T090000Z-snapshot.sqlite3';

export function incidentsFake(host: FakeHost, now: number): IncidentsFake & IncidentsCalls {
  const nowUs = now * 1_000_000;
  function log(id: number, kind: EntryKind, text: string, ok: boolean | null = null, steps: string[] = []) {
    const entries = host.incidentLogs[id] ?? [];
    entries.push({ id: entries.length + 1, at_us: nowUs, actor: 'alice', kind, text, ok, steps });
    host.incidentLogs[id] = entries;
  }
  function viewOf(id: number): IncidentView {
    const incident = host.incidentList.find((i) => i.id === id);
    if (!incident) throw new HostError('invalid_input', `Invalid incident: there is no incident ${id}`);
    return {
      incident,
      playbook: SAMPLE_PLAYBOOK,
      playbook_notice: null,
      log: [...(host.incidentLogs[id] ?? [])],
      failed_attempts: 42,
      restart_loses_data: host.restartLosesData,
      events: { from_us: incident.from_us, to_us: incident.to_us, instance: incident.instances[0] ?? null, service: null, kind: null, outcome: null, ip: incident.ips[0] ?? null, key_prefix: null, path: null, text: null, source: null, hours: null, attempts: true },
    };
  }
  return {
    incidentList: [],
    incidentLogs: {},
    restartLosesData: null,
    blockedOn: {},
    blockRefused: null,
    spoofableAddresses: [],
    async incidents() {
      host.calls.push('incidents');
      return host.incidentList;
    },
    async incident(id) {
      host.calls.push(`incident:${id}`);
      return viewOf(id);
    },
    async openIncident(input) {
      host.calls.push(`openIncident:${input.ips.join(',')}`);
      const id = host.incidentList.length + 1;
      host.incidentList = [
        { id, title: input.title, severity: input.severity, status: 'open', owner: null, source: { hand: 'by hand', offender: `from the offenders list (${input.ips.join(', ')})`, timeline: 'from the timeline' }[input.origin], instances: input.instances, ips: input.ips, from_us: input.from_us, to_us: input.to_us, opened_us: nowUs, closed_us: null, step: 'detection' },
        ...host.incidentList,
      ];
      log(id, 'opened', `${host.incidentList[0]!.source}: ${input.title}`);
      return viewOf(id);
    },
    async incidentFromAlert(alert) {
      host.calls.push(`incidentFromAlert:${alert}`);
      return host.openIncident({ origin: 'hand', title: `Alert ${alert}`, severity: 'high', instances: ['sekha-prod'], ips: ['203.0.113.7'], from_us: 0, to_us: 1 });
    },
    async incidentNote(id, decision, text) {
      host.calls.push(`incidentNote:${id}:${decision}:${text}`);
      if (!text.trim()) throw new HostError('invalid_input', 'Invalid note: the note is empty');
      log(id, decision ? 'decision' : 'note', text);
      return viewOf(id);
    },
    async updateIncident(id, status, owner, step) {
      host.calls.push(`updateIncident:${id}:${status}:${owner}:${step}`);
      host.incidentList = host.incidentList.map((i) => (i.id === id ? { ...i, status: status ?? i.status, owner: owner ?? i.owner, step: step ?? i.step } : i));
      if (status) log(id, 'status', `status: ${status}`);
      return viewOf(id);
    },
    async incidentBlock(id, instance, ip, ttlSecs, spoofableConfirmed) {
      host.calls.push(`incidentBlock:${id}:${instance}:${ip}:${ttlSecs}${spoofableConfirmed ? ':confirmed' : ''}`);
      if (host.spoofableAddresses.includes(ip) && !spoofableConfirmed) {
        log(id, 'action', `block ${ip} on ${instance} for ${ttlSecs} s: refused`, false, ['may be forged']);
        throw new HostError('spoofable_address', `${ip} reached ${instance} only as the service's report of X-Forwarded-For, a header any client can set.`);
      }
      if (host.blockRefused) {
        log(id, 'action', `block ${ip} on ${instance} for ${ttlSecs} s: refused`, false, [host.blockRefused]);
        throw new HostError('agent_refused', host.blockRefused);
      }
      log(id, 'action', `block ${ip} on ${instance} for ${ttlSecs} s`, true, [`${ip} added to blocked4 for ${ttlSecs} s`, `verified: ${ip} is in the set with ${ttlSecs - 1} s left, and the input chain drops it`]);
      return viewOf(id);
    },
    async whyBlocked(ip) {
      host.calls.push(`whyBlocked:${ip}`);
      const on = host.blockedOn[ip] ?? [];
      const answer: WhyBlocked = {
        ip,
        instances: ['alpha', 'beta'].map((instance) => ({
          instance,
          blocked: on.includes(instance),
          expires_in_secs: on.includes(instance) ? 3000 : null,
          error: null,
        })),
        decisions: on.map((instance, i) => ({
          instance,
          agent_id: i + 1,
          time_us: nowUs - 60_000_000,
          kind: 'block',
          rule_name: 'Brute force',
          ip,
          ttl_secs: 3600,
          until: now + 3000,
          enforced: 'firewall',
          verified: true,
          note: '5 failed sign-ins from one address within 10 min: blocked in the host firewall for 1 h.',
          lines: [`${ip} - - [23/Nov/2026:09:00:00 +0000] "POST /login HTTP/1.1" 401 35 "-" "curl/8"`],
        })),
        allowlisted_by: null,
        fleet_block: null,
      };
      return answer;
    },
    async unblockAddress(request) {
      host.calls.push(`unblockAddress:${request.ip}:${request.instance ?? '*'}:${request.allow_hours ?? 0}`);
      const on = host.blockedOn[request.ip] ?? [];
      const lifted = on.filter((i) => request.instance === null || i === request.instance);
      host.blockedOn[request.ip] = on.filter((i) => !lifted.includes(i));
      return ['alpha', 'beta']
        .filter((i) => request.instance === null || i === request.instance)
        .map((instance) => ({ instance, ok: true, message: `verified: ${request.ip} is not in the set` }));
    },
    async blockEverywhere(request) {
      host.calls.push(`blockEverywhere:${request.ip}`);
      host.blockedOn[request.ip] = ['alpha', 'beta'];
      return ['alpha', 'beta'].map((instance) => ({ instance, ok: true, message: `verified: ${request.ip} is in the set` }));
    },
    async incidentUnblock(id, instance, ip) {
      host.calls.push(`incidentUnblock:${id}:${instance}:${ip}`);
      log(id, 'action', `unblock ${ip} on ${instance}`, true, [`verified: ${ip} is not in the set`]);
      return viewOf(id);
    },
    async incidentRestart(id, instance) {
      host.calls.push(`incidentRestart:${id}:${instance}`);
      log(id, 'action', `restart the service on ${instance}`, true, ['ran the restart command', 'verified: the service answers its health check (850 ms)']);
      return viewOf(id);
    },
    async incidentWrites(id) {
      host.calls.push(`incidentWrites:${id}`);
      return [];
    },
    async evidenceBundle(id) {
      host.calls.push(`evidenceBundle:${id}`);
      return { path: `/home/op/Downloads/gatehouse-incident-${id}`, files: 5, manifest: `/home/op/Downloads/gatehouse-incident-${id}/MANIFEST.sha256` };
    },
    async exportIncidentReport(id, markdown) {
      host.calls.push(`exportIncidentReport:${id}:${markdown}`);
      return `/home/op/Downloads/gatehouse-incident-${id}.${markdown ? 'md' : 'html'}`;
    },
    async incidentSnapshot(id, instance) {
      host.calls.push(`incidentSnapshot:${id}:${instance}`);
      log(id, 'action', `snapshot the database on ${instance}`, true, [`${SNAPSHOT} (8192 bytes)`]);
      return viewOf(id);
    },
    async incidentRestore(id, instance, name) {
      host.calls.push(`incidentRestore:${id}:${instance}:${name}`);
      log(id, 'action', `restore ${name} on ${instance}`, true, ['safety snapshot 20261123T091000Z-before-restore.sqlite3', `${name} copied into the database`, 'verified: the service restarted and answers its health check']);
      return viewOf(id);
    },
    async snapshots(instance) {
      host.calls.push(`snapshots:${instance}`);
      return [SNAPSHOT];
    },
  };
}
