// Failed sign-ins: heatmaps, offenders, alerts and the notifications that open them.
import type { Alert } from '../gen/Alert';
import type { Heatmap } from '../gen/Heatmap';
import type { HeatmapQuery } from '../gen/HeatmapQuery';
import type { Offender } from '../gen/Offender';
import type { Snooze } from '../gen/Snooze';
import { nowSeconds } from '../lib/clock';
import type { Host } from '../lib/host';
import type { FakeHost } from './index';

export interface HeatmapsFake {
  heatmapQueries: HeatmapQuery[];
  offenderList: Offender[];
  alertList: Alert[];
  snoozeList: Snooze[];
  /** Resolve to simulate a click on an alert's desktop notification. */
  openAlert: (id: number) => void;
}

type HeatmapsCalls = Pick<
  Host,
  'heatmap' | 'exportHeatmap' | 'offenders' | 'alerts' | 'setAlertState' | 'setAlertsState' | 'snoozes' | 'snoozeRule' | 'unsnoozeRule' | 'nextOpenedAlert'
>;

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
    scale: query.scale,
    total: 40,
    width: 960,
    height: 316,
    grid: { left: 0.06, top: 0.2, width: 0.92, height: 0.53 },
    svg: `<svg xmlns="http://www.w3.org/2000/svg" width="960" height="316"><rect width="960" height="316" fill="${query.theme === 'dark' ? '#17181C' : '#FFFFFF'}"/></svg>`,
  };
}

/** An offender as the core would describe it: failing from about two hours before `now`
 * (Unix seconds) for twelve minutes. */
export function sampleOffender(ip: string, overrides: Partial<Offender> = {}, now: number = Math.floor(nowSeconds())): Offender {
  const first = now - 2 * 3600 - 600;
  return {
    ip,
    failures: 120,
    distinct_keys: 0,
    key_prefixes: [],
    instances: ['sekha-prod'],
    first_us: first * 1_000_000,
    last_us: (first + 717) * 1_000_000,
    trend: [0, 0, 0, 0, 2, 8, 40, 70],
    direction: 'rising',
    allowlisted: false,
    blocked: false,
    open_alerts: 1,
    spoofable: false,
    ...overrides,
  };
}

/** An alert as the core would describe it: an episode about two hours before `now`. */
export function sampleAlert(id: number, overrides: Partial<Alert> = {}, now: number = Math.floor(nowSeconds())): Alert {
  const first = now - 2 * 3600;
  return {
    id,
    rule_id: 'brute-force',
    rule_name: 'Brute force',
    kind: 'brute_force',
    severity: 'high',
    instance: 'sekha-prod',
    subject: '203.0.113.7',
    first_us: first * 1_000_000,
    last_us: (first + 117) * 1_000_000,
    count: 12,
    detail: '12 failed sign-ins from 203.0.113.7 against sekha-prod within 1 min.',
    state: 'new',
    state_at: null,
    created_us: (first + 117) * 1_000_000,
    facets: [
      {
        rule_id: 'brute-force',
        rule_name: 'Brute force',
        kind: 'brute_force',
        severity: 'high',
        first_us: first * 1_000_000,
        last_us: (first + 117) * 1_000_000,
        count: 12,
        distinct: 0,
        detail: '12 failed sign-ins from 203.0.113.7 against sekha-prod within 1 min.',
      },
    ],
    addresses: ['203.0.113.7'],
    rotation_id: null,
    ...overrides,
  };
}

export function heatmapsFake(host: FakeHost): HeatmapsFake & HeatmapsCalls {
  return {
    heatmapQueries: [],
    offenderList: [],
    alertList: [],
    snoozeList: [],
    openAlert: () => {},
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
      const offset = query.offset ?? 0;
      const limit = query.limit ?? 100;
      const part = query.address?.toLowerCase();
      const matching = part ? host.offenderList.filter((o) => o.ip.toLowerCase().includes(part)) : host.offenderList;
      return { offenders: matching.slice(offset, offset + limit), offset, total: matching.length };
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
    async setAlertsState(ids, state) {
      host.calls.push(`setAlertsState:${ids.join(',')}:${state}`);
      host.alertList = host.alertList.map((a) => (ids.includes(a.id) ? { ...a, state } : a));
      return {
        alerts: host.alertList.filter((a) => ids.includes(a.id)),
        missing: ids.filter((id) => !host.alertList.some((a) => a.id === id)),
      };
    },
    async snoozes() {
      host.calls.push('snoozes');
      return host.snoozeList;
    },
    async snoozeRule(request) {
      host.calls.push(`snoozeRule:${request.rule_id}:${request.instance}:${request.hours}:${request.reason}`);
      const now = nowSeconds() * 1e6;
      const snooze: Snooze = { ...request, until_us: now + request.hours * 3_600e6, created_us: now, held: 0 };
      host.snoozeList = [...host.snoozeList.filter((s) => s.rule_id !== request.rule_id || s.instance !== request.instance), snooze];
      return snooze;
    },
    async unsnoozeRule(ruleId, instance) {
      host.calls.push(`unsnoozeRule:${ruleId}:${instance}`);
      host.snoozeList = host.snoozeList.filter((s) => s.rule_id !== ruleId || s.instance !== instance);
    },
    nextOpenedAlert() {
      host.calls.push('nextOpenedAlert');
      return new Promise<number>((resolve) => {
        host.openAlert = resolve;
      });
    },
  };
}
