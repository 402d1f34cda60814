// The event store: pages newest first, raw lines, sync state, export.
import type { EventFilter } from '../gen/EventFilter';
import type { SyncState } from '../gen/SyncState';
import type { TimelineEvent } from '../gen/TimelineEvent';
import { nowSeconds } from '../lib/clock';
import type { Host } from '../lib/host';
import type { FakeHost } from './index';

export interface TimelineFake {
  /** The timeline, newest first. */
  timeline: TimelineEvent[];
  raw: Record<string, string>;
  lastFilter: EventFilter | null;
  /** Each instance's pull, when a test sets it; else one per enrolled instance, never synced. */
  syncList: SyncState[] | null;
}

type TimelineCalls = Pick<Host, 'events' | 'eventRaw' | 'syncStates' | 'syncNow' | 'exportEvents'>;

/** A timeline event as the core would return it: `seq` seconds into a run of events that
 * started four hours before `now` (Unix seconds), so a higher `seq` is newer. */
export function sampleEvent(seq: number, overrides: Partial<TimelineEvent> = {}, now: number = Math.floor(nowSeconds())): TimelineEvent {
  return {
    time_us: (now - 4 * 3600 + seq) * 1_000_000,
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
    (f.from_us === null || e.time_us >= f.from_us) &&
    (f.to_us === null || e.time_us < f.to_us) &&
    (!f.instance || e.instance === f.instance) &&
    (!f.kind || e.kind === f.kind) &&
    (!f.outcome || e.outcome === f.outcome) &&
    (!f.ip || e.ip === f.ip) &&
    (!f.attempts || (e.kind === 'auth' && e.outcome === 'failure')) &&
    (!f.text || [e.ip, e.path, e.message, e.instance].some((v) => v?.includes(f.text!)))
  );
}

export function timelineFake(host: FakeHost): TimelineFake & TimelineCalls {
  return {
    timeline: [],
    raw: {},
    lastFilter: null,
    syncList: null,
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
      if (host.syncList) return host.syncList;
      return host.fleet.map((i) => ({ instance: i.name, after: 0, events: 0, gaps: 0, last_sync: null, last_error: null, failures: 0, unparsed: 0 }));
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
}
