// A scriptable stand-in for the Tauri host, for UI tests. It answers like the real core and
// records what the UI asked for.
import type { Alert } from '../gen/Alert';
import type { Credential } from '../gen/Credential';
import type { DetectionSettings } from '../gen/DetectionSettings';
import type { EventFilter } from '../gen/EventFilter';
import type { Heatmap } from '../gen/Heatmap';
import type { HeatmapQuery } from '../gen/HeatmapQuery';
import type { Offender } from '../gen/Offender';
import type { InstanceView } from '../gen/InstanceView';
import type { TimelineEvent } from '../gen/TimelineEvent';
import type { KeychainStatus } from '../gen/KeychainStatus';
import type { Overview } from '../gen/Overview';
import type { Theme } from '../gen/Theme';
import type { ComplianceView } from '../gen/ComplianceView';
import type { ItemView } from '../gen/ItemView';
import type { Incident } from '../gen/Incident';
import type { IncidentView } from '../gen/IncidentView';
import type { Playbook } from '../gen/Playbook';
import type { EntryKind } from '../gen/EntryKind';
import { nowMicros, nowSeconds } from './clock';
import { HostError, type Host } from './host';

export interface FakeHost extends Host {
  calls: string[];
  theme: Theme;
  keychain: KeychainStatus;
  overviewError: HostError | null;
  overviewOverride: Partial<Overview> | null;
  fleet: InstanceView[];
  /** When set, addInstance fails with it. */
  addError: HostError | null;
  /** The timeline, newest first. */
  timeline: TimelineEvent[];
  raw: Record<string, string>;
  lastFilter: EventFilter | null;
  timeZone: string | null;
  heatmapQueries: HeatmapQuery[];
  offenderList: Offender[];
  alertList: Alert[];
  detectionSettings: DetectionSettings;
  /** Resolve to simulate a click on an alert's desktop notification. */
  openAlert: (id: number) => void;
  credentialList: Credential[];
  keyDays: Record<string, number>;
  /** When set, rotations roll back with this reason. */
  rotationFails: string | null;
  /** The checklist items, across instances. */
  items: ItemView[];
  incidentList: Incident[];
  /** Each incident's log, by id. */
  incidentLogs: Record<number, IncidentView['log']>;
  /** When set, blocks are refused with this reason. */
  blockRefused: string | null;
  audit: import('../gen/AuditEntry').AuditEntry[];
  auditVerdict: import('../gen/AuditVerdict').AuditVerdict;
}

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

/** A checklist item as the core would describe it. */
export function sampleItem(id: string, overrides: Partial<ItemView> = {}): ItemView {
  return {
    instance: 'sekha-prod',
    id,
    section: 'Pre-deployment',
    text: `Item ${id}`,
    source: 'Security Checklist › Pre-Deployment',
    why: null,
    cadence: 'once',
    automated: true,
    state: 'pass',
    state_text: 'every check passes',
    checks: [],
    owner: null,
    due_at: null,
    overdue: false,
    signed_off_at: null,
    signed_off_by: null,
    evidence: [],
    waiver: null,
    reopened: false,
    ...overrides,
  };
}

/** The scorecards and items of `items`, as the core counts them. */
export function complianceOf(items: ItemView[], filter: string | null, instance: string | null): ComplianceView {
  const card = (list: ItemView[]) => {
    const c = { total: 0, passing: 0, failing: 0, due: 0, unknown: 0, waived: 0, score: 0 };
    for (const i of list) {
      c.total += 1;
      if (i.state === 'pass' || i.state === 'done') c.passing += 1;
      else if (i.state === 'fail') c.failing += 1;
      else if (i.state === 'due') c.due += 1;
      else if (i.state === 'unknown') c.unknown += 1;
      else c.waived += 1;
    }
    const counted = c.total - c.waived;
    c.score = counted === 0 ? 100 : Math.floor((c.passing * 100) / counted);
    return c;
  };
  const names = [...new Set(items.map((i) => i.instance))].filter((n) => instance === null || n === instance);
  const keep = (i: ItemView) =>
    filter === null || (filter === 'failing' ? i.state === 'fail' : filter === 'due' ? i.state === 'due' : i.state === 'waived');
  return {
    fleet: card(items.filter((i) => names.includes(i.instance))),
    instances: names.map((name) => {
      const mine = items.filter((i) => i.instance === name);
      return {
        instance: name,
        profile: 'sekha',
        template: 'Sekha security checklist',
        guide: 'Sekha security guide: Security Checklist',
        scorecard: card(mine),
        items: mine.filter(keep),
        last_run: 1_795_401_600,
        problem: null,
      };
    }),
    generated_at: Math.floor(nowSeconds()),
    tls_minimum: '1.3',
  };
}

/** A credential as the core would describe it; due `dueInDays` after `now` (Unix seconds). */
export function sampleCredential(
  id: string,
  dueInDays: number,
  overrides: Partial<Credential> = {},
  now: number = Math.floor(nowSeconds()),
): Credential {
  return {
    id,
    instance: 'sekha-prod',
    kind: 'api_key',
    name: 'mcp_api_key',
    location: '/srv/sekha/config.toml',
    fingerprint: '9f86d081884c7d65',
    set_at: now - (90 - dueInDays) * 86400,
    last_rotation: null,
    expires_at: null,
    due_at: now + dueInDays * 86400,
    policy: 'every 90 days (the guides: quarterly)',
    status: dueInDays < 0 ? 'failing' : dueInDays < 30 ? 'warning' : 'ok',
    status_text: dueInDays < 0 ? `overdue by ${-dueInDays} days` : `due in ${dueInDays} days`,
    weak: false,
    ...overrides,
  };
}

/** A 7 x 24 weekday heatmap as the core would draw it, with one busy cell. */
export function sampleHeatmap(query: HeatmapQuery): Heatmap {
  const rows = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const columns = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0'));
  const cells = rows.flatMap((row, r) =>
    columns.map((column, c) => ({
      row: r,
      column: c,
      count: r === 0 && c === 14 ? 40 : 0,
      label: `${row} ${column}:00`,
      filter: {
        from_us: null,
        to_us: null,
        instance: query.instance,
        service: query.service,
        kind: null,
        outcome: null,
        ip: null,
        key_prefix: null,
        path: null,
        text: null,
        source: null,
        hours: [r * 24 + c],
        attempts: true,
      },
    })),
  );
  return {
    title: 'Failed sign-ins by weekday and hour',
    subtitle: 'last 30 days · times in Europe/Berlin (UTC+01:00) · all instances · 40 in all',
    time_zone: 'Europe/Berlin',
    rows,
    columns,
    cells,
    max: 40,
    total: 40,
    width: 960,
    height: 316,
    grid: { left: 0.06, top: 0.2, width: 0.92, height: 0.53 },
    svg: `<svg xmlns="http://www.w3.org/2000/svg" width="960" height="316"><rect width="960" height="316" fill="${query.theme === 'dark' ? '#17181C' : '#FFFFFF'}"/></svg>`,
  };
}

/** An offender as the core would describe it. */
export function sampleOffender(ip: string, overrides: Partial<Offender> = {}): Offender {
  return {
    ip,
    failures: 120,
    distinct_keys: 0,
    key_prefixes: [],
    instances: ['sekha-prod'],
    first_us: 1_795_401_000_000_000,
    last_us: 1_795_401_717_000_000,
    trend: [0, 0, 0, 0, 2, 8, 40, 70],
    direction: 'rising',
    allowlisted: false,
    blocked: false,
    open_alerts: 1,
    ...overrides,
  };
}

/** An alert as the core would describe it. */
export function sampleAlert(id: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id,
    rule_id: 'brute-force',
    rule_name: 'Brute force',
    kind: 'brute_force',
    severity: 'high',
    instance: 'sekha-prod',
    subject: '203.0.113.7',
    first_us: 1_795_401_600_000_000,
    last_us: 1_795_401_717_000_000,
    count: 12,
    detail: '12 failed sign-ins from 203.0.113.7 against sekha-prod within 1 min.',
    state: 'new',
    state_at: null,
    created_us: 1_795_401_717_000_000,
    ...overrides,
  };
}

/** A timeline event as the core would return it. */
export function sampleEvent(seq: number, overrides: Partial<TimelineEvent> = {}): TimelineEvent {
  return {
    time_us: 1_795_401_717_000_000 + seq * 1_000_000,
    instance: 'sekha-prod',
    seq,
    source: 'proxy',
    kind: 'auth',
    outcome: 'failure',
    ip: '203.0.113.7',
    path: '/mcp/tools/memory_stats',
    actor: null,
    key_prefix: null,
    method: 'POST',
    status: 401,
    message: null,
    flags: 0,
    ...overrides,
  };
}

function matches(e: TimelineEvent, f: EventFilter): boolean {
  return (
    (!f.instance || e.instance === f.instance) &&
    (!f.kind || e.kind === f.kind) &&
    (!f.outcome || e.outcome === f.outcome) &&
    (!f.ip || e.ip === f.ip) &&
    (!f.attempts || (e.kind === 'auth' && e.outcome === 'failure')) &&
    (!f.text || [e.ip, e.path, e.message, e.instance].some((v) => v?.includes(f.text!)))
  );
}

/** An enrolled, healthy instance as the core would describe it, as of `now` (Unix seconds). */
export function sampleInstance(
  name: string,
  overrides: Partial<InstanceView> = {},
  now: number = Math.floor(nowSeconds()),
): InstanceView {
  return {
    name,
    address: '127.0.0.1:7443',
    profile: 'sekha',
    status: 'ok',
    status_text: 'Agent and service answer.',
    error_code: null,
    host: 'db-1',
    agent_version: '0.1.0',
    service_health: 'ok',
    service_detail: 'GET http://127.0.0.1:8080/health answered 200',
    last_contact: now - 30,
    cert_not_after: now + 30 * 86400,
    cert_renew_at: now + 20 * 86400,
    revoked: false,
    ...overrides,
  };
}

export function fakeHost(): FakeHost {
  const host: FakeHost = {
    calls: [],
    theme: 'system',
    keychain: { state: 'available', service: 'Gatehouse', backend: 'Secret Service (D-Bus)', message: '' },
    overviewError: null,
    overviewOverride: null,
    fleet: [],
    addError: null,
    timeline: [],
    raw: {},
    lastFilter: null,
    timeZone: null,
    heatmapQueries: [],
    offenderList: [],
    alertList: [],
    detectionSettings: {
      rules: [
        {
          id: 'brute-force',
          name: 'Brute force',
          detection: { kind: 'brute_force', failures: 5, window_secs: 600 },
          services: [],
          enabled: true,
          severity: 'high',
          basis: 'Sekha security guide, Fail2Ban jail: maxretry = 5, findtime = 600.',
        },
      ],
      allowlist: [],
    },
    openAlert: () => {},
    credentialList: [],
    keyDays: {},
    rotationFails: null,
    items: [],
    incidentList: [],
    incidentLogs: {},
    blockRefused: null,
    audit: [],
    auditVerdict: { intact: true, rows: 0, first_broken: null, problem: null },
    async appInfo() {
      host.calls.push('appInfo');
      return {
        version: '0.1.0',
        data_dir: '/tmp/gatehouse-test',
        database: '/tmp/gatehouse-test/gatehouse.sqlite3',
        log_dir: '/tmp/gatehouse-test/logs',
        schema_version: 1,
        platform: 'linux-x86_64',
      };
    },
    async keychainStatus() {
      host.calls.push('keychainStatus');
      return host.keychain;
    },
    async overview() {
      host.calls.push('overview');
      if (host.overviewError) throw host.overviewError;
      return {
        instances: 0,
        keychain: host.keychain,
        attention: [
          {
            view: 'fleet',
            status: 'unknown',
            title: 'No instances enrolled yet',
            detail: 'Enroll an instance from the Fleet view, or start the demo fleet.',
          },
        ],
        ...host.overviewOverride,
      };
    },
    async settings() {
      host.calls.push('settings');
      return { theme: host.theme, time_zone: host.timeZone, effective_time_zone: host.timeZone ?? 'Europe/Berlin' };
    },
    async setTheme(theme) {
      host.calls.push(`setTheme:${theme}`);
      host.theme = theme;
      return host.settings();
    },
    async setTimeZone(zone) {
      host.calls.push(`setTimeZone:${zone}`);
      if (zone === 'Mars/Olympus') throw new HostError('invalid_input', 'Invalid time_zone: "Mars/Olympus" is not a known time zone');
      host.timeZone = zone;
      return host.settings();
    },
    async heatmap(query) {
      host.calls.push(`heatmap:${query.kind}:${query.window}:${query.theme}`);
      host.heatmapQueries.push(query);
      return sampleHeatmap(query);
    },
    async exportHeatmap(query, format) {
      host.calls.push(`exportHeatmap:${query.kind}:${format}`);
      return `/home/op/Downloads/gatehouse-heatmap.${format}`;
    },
    async offenders(query) {
      host.calls.push(`offenders:${query.window}`);
      return host.offenderList;
    },
    async alerts(filter) {
      host.calls.push(`alerts:${filter.all ? 'all' : 'open'}`);
      return host.alertList.filter((a) => filter.all || a.state !== 'resolved');
    },
    async setAlertState(id, state) {
      host.calls.push(`setAlertState:${id}:${state}`);
      host.alertList = host.alertList.map((a) => (a.id === id ? { ...a, state } : a));
      return host.alertList.find((a) => a.id === id)!;
    },
    async detection() {
      host.calls.push('detection');
      return host.detectionSettings;
    },
    async setDetection(detection) {
      host.calls.push('setDetection');
      if (detection.allowlist.some((a) => !/^[0-9a-f.:/]+$/i.test(a))) {
        throw new HostError('invalid_input', `Invalid allowlist: "${detection.allowlist.find((a) => !/^[0-9a-f.:/]+$/i.test(a))}" is not an address or a network such as 192.0.2.0/24`);
      }
      host.detectionSettings = detection;
      return detection;
    },
    async resetDetection() {
      host.calls.push('resetDetection');
      return host.detectionSettings;
    },
    async credentials() {
      host.calls.push('credentials');
      return { credentials: host.credentialList, problems: [], key_days: host.keyDays, checked_at: Math.floor(nowSeconds()) };
    },
    async setKeyRotationDays(instance, days) {
      host.calls.push(`setKeyRotationDays:${instance}:${days}`);
      if (days !== null && (days < 1 || days > 730)) throw new HostError('invalid_input', `Invalid days: a rotation period must be 1 to 730 days, not ${days}`);
      if (days === null) delete host.keyDays[instance];
      else host.keyDays[instance] = days;
    },
    async rotationPreview(instance, name) {
      host.calls.push(`rotationPreview:${instance}:${name}`);
      return {
        instance,
        name,
        file: '/srv/sekha/config.toml',
        fingerprint: '9f86d081884c7d65',
        impact: `${name} is the service's one key: it is replaced and the service restarts, cutting over at once.`,
      };
    },
    async rotateKey(instance, name) {
      host.calls.push(`rotateKey:${instance}:${name}`);
      const failed = host.rotationFails;
      return {
        instance,
        name,
        committed: failed === null,
        rolled_back: failed !== null,
        old_key_works: failed === null ? null : true,
        steps: failed === null
          ? ['kept a backup', 'wrote the new key (mode 0600)', 'restarted the service', 'verified: the new key is accepted, the old key is refused']
          : ['kept a backup', 'wrote the new key (mode 0600)', 'put the previous config back', 'verified: the old key works again'],
        error: failed,
        old_fingerprint: '9f86d081884c7d65',
        new_fingerprint: 'a1b2c3d4e5f60718',
        restart_ms: 850,
        verified: failed === null,
      };
    },
    async copyRotatedKey(label) {
      host.calls.push(`copyRotatedKey:${label ?? ''}`);
      return `The new key for ${label ?? 'mcp_api_key on sekha-prod'} is on the clipboard for 30 seconds.`;
    },
    async rotateMany(targets) {
      host.calls.push(`rotateMany:${targets.length}`);
      const items = [];
      for (const [instance, name] of targets) {
        items.push({ instance, name, result: await host.rotateKey(instance, name), error: null });
      }
      return items;
    },
    async bulkProgress() {
      return [1, 2];
    },
    async rotationHistory(limit) {
      host.calls.push(`rotationHistory:${limit}`);
      return [
        {
          instance: 'sekha-prod',
          name: 'mcp_api_key',
          old_fingerprint: '9f86d081884c7d65',
          new_fingerprint: 'a1b2c3d4e5f60718',
          started_at: 1_795_401_600,
          finished_at: 1_795_401_602,
          state: 'committed',
          detail: 'verified',
          operator: 'alice',
        },
      ];
    },
    async compliance(query) {
      host.calls.push(`compliance:${query.filter ?? ''}`);
      return complianceOf(host.items, query.filter, query.instance);
    },
    async runChecks(instance) {
      host.calls.push(`runChecks:${instance ?? ''}`);
      return { instances: 1, checks: 14, reopened: [], errors: [] };
    },
    async itemHistory(instance, item) {
      host.calls.push(`itemHistory:${instance}:${item}`);
      return [{ at: 1_795_401_600, kind: 'check', state: 'pass', detail: 'every check passes', actor: 'alice' }];
    },
    async assignItem(instance, item, owner, dueAt) {
      host.calls.push(`assignItem:${instance}:${item}:${owner}:${dueAt}`);
      return update(instance, item, { owner, due_at: dueAt });
    },
    async signOffItem(instance, item, note) {
      host.calls.push(`signOffItem:${instance}:${item}:${note}`);
      return update(instance, item, { state: 'done', state_text: 'signed off just now by alice', signed_off_by: 'alice', signed_off_at: Math.floor(nowSeconds()) });
    },
    async addItemEvidence(instance, item, evidence) {
      host.calls.push(`addItemEvidence:${instance}:${item}:${evidence.kind}:${evidence.text}`);
      if (evidence.kind === 'link' && !/^https?:\/\//.test(evidence.text)) {
        throw new HostError('invalid_input', 'Invalid evidence: a link must start with https:// or http://');
      }
      const current = host.items.find((i) => i.instance === instance && i.id === item)!;
      return update(instance, item, {
        evidence: [{ id: current.evidence.length + 1, at: Math.floor(nowSeconds()), actor: 'alice', kind: evidence.kind, text: evidence.text, sha256: null, size: null }, ...current.evidence],
      });
    },
    async waiveItem(instance, item, waiver) {
      host.calls.push(`waiveItem:${instance}:${item}:${waiver.kind}`);
      if (!waiver.reason.trim()) throw new HostError('invalid_input', 'Invalid waiver: say why the item is waived');
      return update(instance, item, {
        state: 'waived',
        state_text: `waived until later (${waiver.reason}; approved by ${waiver.approved_by})`,
        waiver: { id: 1, kind: waiver.kind, reason: waiver.reason, approved_by: waiver.approved_by, created_at: Math.floor(nowSeconds()), expires_at: waiver.expires_at },
      });
    },
    async endWaiver(instance, item) {
      host.calls.push(`endWaiver:${instance}:${item}`);
      return update(instance, item, { state: 'fail', waiver: null, state_text: 'fails again' });
    },
    async exportCompliance(format) {
      host.calls.push(`exportCompliance:${format}`);
      return `/home/op/Downloads/gatehouse-compliance.${format}`;
    },
    async setTlsMinimum(version) {
      host.calls.push(`setTlsMinimum:${version}`);
      return complianceOf(host.items, null, null);
    },
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
        { id, title: input.title, severity: input.severity, status: 'open', owner: null, source: 'by hand', instances: input.instances, ips: input.ips, from_us: input.from_us, to_us: input.to_us, opened_us: nowMicros(), closed_us: null, step: 'detection' },
        ...host.incidentList,
      ];
      log(id, 'opened', `opened: ${input.title}`);
      return viewOf(id);
    },
    async incidentFromAlert(alert) {
      host.calls.push(`incidentFromAlert:${alert}`);
      return host.openIncident({ title: `Alert ${alert}`, severity: 'high', instances: ['sekha-prod'], ips: ['203.0.113.7'], from_us: 0, to_us: 1 });
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
    async incidentBlock(id, instance, ip, ttlSecs) {
      host.calls.push(`incidentBlock:${id}:${instance}:${ip}:${ttlSecs}`);
      if (host.blockRefused) {
        log(id, 'action', `block ${ip} on ${instance}: refused`, false, [host.blockRefused]);
        throw new HostError('agent_refused', host.blockRefused);
      }
      log(id, 'action', `block ${ip} on ${instance} for ${ttlSecs} s`, true, [`${ip} added to blocked4 for ${ttlSecs} s`, `verified: ${ip} is in the set with ${ttlSecs - 1} s left, and the input chain drops it`]);
      return viewOf(id);
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
      log(id, 'action', `snapshot the database on ${instance}`, true, ['20261123T090000Z-snapshot.sqlite3 (8192 bytes)']);
      return viewOf(id);
    },
    async incidentRestore(id, instance, name) {
      host.calls.push(`incidentRestore:${id}:${instance}:${name}`);
      log(id, 'action', `restore ${name} on ${instance}`, true, ['safety snapshot 20261123T091000Z-before-restore.sqlite3', `${name} copied into the database`, 'verified: the service restarted and answers its health check']);
      return viewOf(id);
    },
    async snapshots(instance) {
      host.calls.push(`snapshots:${instance}`);
      return ['20261123T090000Z-snapshot.sqlite3'];
    },
    async auditLog(limit) {
      host.calls.push(`auditLog:${limit}`);
      return host.audit;
    },
    async verifyAudit() {
      host.calls.push('verifyAudit');
      return host.auditVerdict;
    },
    nextOpenedAlert() {
      host.calls.push('nextOpenedAlert');
      return new Promise<number>((resolve) => {
        host.openAlert = resolve;
      });
    },
    async firstPaint() {
      host.calls.push('firstPaint');
    },
    async instances() {
      host.calls.push('instances');
      return host.fleet;
    },
    async addInstance(request) {
      host.calls.push(`addInstance:${request.name}:${request.address}`);
      if (host.addError) throw host.addError;
      const added = sampleInstance(request.name, { address: request.address });
      host.fleet = [...host.fleet, added];
      return added;
    },
    async refreshInstance(name) {
      host.calls.push(`refreshInstance:${name}`);
      return host.fleet.find((i) => i.name === name)!;
    },
    async refreshAll() {
      host.calls.push('refreshAll');
      return { reached: host.fleet.length, failed: 0, instances: host.fleet };
    },
    async revokeInstance(name) {
      host.calls.push(`revokeInstance:${name}`);
      host.fleet = host.fleet.map((i) =>
        i.name === name ? { ...i, revoked: true, status: 'failing', status_text: 'Revoked.' } : i,
      );
      return host.fleet.find((i) => i.name === name)!;
    },
    async removeInstance(name) {
      host.calls.push(`removeInstance:${name}`);
      host.fleet = host.fleet.filter((i) => i.name !== name);
    },
    async events(filter, before, limit) {
      host.calls.push('events');
      host.lastFilter = filter;
      const all = host.timeline.filter((e) => matches(e, filter));
      const start = before ? all.findIndex((e) => e.time_us < before.time_us || (e.time_us === before.time_us && e.seq < before.seq)) : 0;
      const page = start < 0 ? [] : all.slice(start, start + limit);
      const last = page[page.length - 1];
      const next = page.length === limit && last ? { time_us: last.time_us, instance: last.instance, seq: last.seq } : null;
      return { events: page, next };
    },
    async eventRaw(instance, seq) {
      host.calls.push(`eventRaw:${instance}:${seq}`);
      return host.raw[`${instance}:${seq}`] ?? null;
    },
    async syncStates() {
      host.calls.push('syncStates');
      return host.fleet.map((i) => ({ instance: i.name, after: 0, events: 0, gaps: 0, last_sync: null, last_error: null, failures: 0 }));
    },
    async syncNow() {
      host.calls.push('syncNow');
      return 0;
    },
    async exportEvents(filter, format) {
      host.calls.push(`exportEvents:${format}`);
      host.lastFilter = filter;
      return { path: `/home/op/Downloads/gatehouse-events.${format}`, events: host.timeline.filter((e) => matches(e, filter)).length };
    },
  };
  function log(id: number, kind: EntryKind, text: string, ok: boolean | null = null, steps: string[] = []) {
    const entries = host.incidentLogs[id] ?? [];
    entries.push({ id: entries.length + 1, at_us: nowMicros(), actor: 'alice', kind, text, ok, steps });
    host.incidentLogs[id] = entries;
  }
  function viewOf(id: number): IncidentView {
    const incident = host.incidentList.find((i) => i.id === id);
    if (!incident) throw new HostError('invalid_input', `Invalid incident: there is no incident ${id}`);
    return {
      incident,
      playbook: SAMPLE_PLAYBOOK,
      log: [...(host.incidentLogs[id] ?? [])],
      failed_attempts: 42,
      events: { from_us: incident.from_us, to_us: incident.to_us, instance: incident.instances[0] ?? null, service: null, kind: null, outcome: null, ip: incident.ips[0] ?? null, key_prefix: null, path: null, text: null, source: null, hours: null, attempts: true },
    };
  }
  function update(instance: string, item: string, change: Partial<ItemView>): ItemView {
    host.items = host.items.map((i) => (i.instance === instance && i.id === item ? { ...i, ...change } : i));
    return host.items.find((i) => i.instance === instance && i.id === item)!;
  }
  return host;
}
