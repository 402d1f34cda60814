// A scriptable stand-in for the Tauri host, for UI tests. It answers like the real core and
// records what the UI asked for.
import type { EventFilter } from '../gen/EventFilter';
import type { InstanceView } from '../gen/InstanceView';
import type { TimelineEvent } from '../gen/TimelineEvent';
import type { KeychainStatus } from '../gen/KeychainStatus';
import type { Overview } from '../gen/Overview';
import type { Theme } from '../gen/Theme';
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
    (!f.text || [e.ip, e.path, e.message, e.instance].some((v) => v?.includes(f.text!)))
  );
}

/** An enrolled, healthy instance as the core would describe it. */
export function sampleInstance(name: string, overrides: Partial<InstanceView> = {}): InstanceView {
  const now = Math.floor(Date.now() / 1000);
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
      return { theme: host.theme };
    },
    async setTheme(theme) {
      host.calls.push(`setTheme:${theme}`);
      host.theme = theme;
      return { theme };
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
  return host;
}
