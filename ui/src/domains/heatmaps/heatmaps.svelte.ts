// The Heatmaps view's controller: the chart, offenders and alerts for one window and scope,
// refreshed while the view is shown (alerts every two seconds while their tab is), alert
// states, chart export, and incidents from an offender or an alert.
import { untrack } from 'svelte';

import type { Alert } from '../../gen/Alert';
import type { ColourScale } from '../../gen/ColourScale';
import type { AlertState } from '../../gen/AlertState';
import type { Heatmap } from '../../gen/Heatmap';
import type { HeatmapKind } from '../../gen/HeatmapKind';
import type { HeatmapQuery } from '../../gen/HeatmapQuery';
import type { ImageFormat } from '../../gen/ImageFormat';
import type { InstanceView } from '../../gen/InstanceView';
import type { Offender } from '../../gen/Offender';
import type { Snooze } from '../../gen/Snooze';
import type { Theme } from '../../gen/Theme';
import type { Window } from '../../gen/Window';
import { nowMicros, nowSeconds } from '../../lib/clock';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import { servicesOf } from '../../lib/instances';
import { effectiveTheme } from '../../lib/theme';

export type Tab = 'charts' | 'offenders' | 'alerts';
export type AlertGrouping = 'none' | 'instance' | 'source';

export const GROUPINGS: readonly (readonly [AlertGrouping, string])[] = [
  ['none', 'Newest first'],
  ['instance', 'By instance'],
  ['source', 'By address'],
];
/** How long a rule may be snoozed: the core takes 1 to 720 hours. */
export const SNOOZE_HOURS: readonly (readonly [number, string])[] = [
  [1, '1 hour'],
  [8, '8 hours'],
  [24, '24 hours'],
  [72, '3 days'],
  [168, '7 days'],
  [720, '30 days'],
];
/** The kinds of alert a detection rule raises: only these can be snoozed. */
const DETECTION_KINDS = ['brute_force', 'key_spraying', 'distributed', 'baseline_jump'];

/** The detection rules that saw an alert's attack, [id, name], first to fire first. */
export function alertRules(a: Alert): [string, string][] {
  const rules: [string, string][] = a.facets
    .filter((f) => DETECTION_KINDS.includes(f.kind))
    .map((f) => [f.rule_id, f.rule_name]);
  if (rules.length === 0 && DETECTION_KINDS.includes(a.kind)) rules.push([a.rule_id, a.rule_name]);
  return rules;
}

/** "3 alerts" or "1 alert". */
function alertsWord(n: number): string {
  return `${n} alert${n === 1 ? '' : 's'}`;
}

/** The word a state is said with after a change. */
const DONE: Record<AlertState, string> = { new: 'Reopened', acknowledged: 'Acknowledged', resolved: 'Resolved' };
export type OffenderSort = 'failures' | 'distinct_keys' | 'last_us' | 'ip';

export const KINDS: readonly (readonly [HeatmapKind, string])[] = [
  ['weekday_hour', 'Weekday × hour'],
  ['address_time', 'Top addresses × time'],
  ['instance_day', 'Instances × day'],
];
export const SCALES: readonly (readonly [ColourScale, string])[] = [
  ['log', 'Log (a few stay visible)'],
  ['linear', 'Proportional'],
];
export const WINDOWS: readonly (readonly [Window, string])[] = [
  ['day', 'Last 24 hours'],
  ['week', 'Last 7 days'],
  ['month', 'Last 30 days'],
  ['quarter', 'Last 90 days'],
];
/** Offenders per page: the core lists the most failures first and says how many in all. */
export const OFFENDER_LIMIT = 100;
const REFRESH_MS = 10_000;
const ALERTS_REFRESH_MS = 2_000;
/** Typing in the address search settles for this long before the host is asked. */
const SEARCH_SETTLE_MS = 250;

export interface HeatmapsOptions {
  /** The operator's theme: the core draws the chart in its colours. */
  theme: () => Theme;
  /** Show an incident just opened from an offender or an alert. */
  onincident: (id: number) => void;
}

export class HeatmapsController {
  readonly #host: Host;
  readonly #options: HeatmapsOptions;
  /** Answers to older requests (a slow quarter, then a quick day) are dropped. */
  #latest = 0;

  tab = $state<Tab>('charts');
  kind = $state<HeatmapKind>('weekday_hour');
  range = $state<Window>('month');
  /** How the chart maps counts to colours. */
  scale = $state<ColourScale>('log');
  instance = $state('');
  service = $state('');
  instances = $state<InstanceView[] | null>(null);
  map = $state<Heatmap | null>(null);
  offenders = $state<Offender[]>([]);
  /** How many addresses failed in the window in all, and the rank of the page's first. */
  offenderTotal = $state(0);
  offenderOffset = $state(0);
  /** The address search the offenders shown were read with ('' for none). */
  offendersFor = $state('');
  alerts = $state<Alert[]>([]);
  showResolved = $state(false);
  error = $state<HostError | null>(null);
  note = $state<string | null>(null);
  sortKey = $state<OffenderSort>('failures');
  /** Part of an address, as typed: narrows the offenders listed. */
  addressQuery = $state('');
  now = $state(nowSeconds());

  readonly services = $derived(servicesOf(this.instances));
  readonly openAlerts = $derived(this.alerts.filter((a) => a.state !== 'resolved').length);
  readonly newAlerts = $derived(this.alerts.filter((a) => a.state === 'new'));
  /** The new alerts the operator is asked to confirm acknowledging, while asked. */
  acknowledging = $state<Alert[] | null>(null);
  /** Alerts chosen for a change of many at once, by id. */
  selected = $state<number[]>([]);
  /** The chosen alerts still listed. */
  readonly selectedAlerts = $derived(this.alerts.filter((a) => this.selected.includes(a.id)));
  /** The chosen alerts that acknowledging would change (not the resolved ones). */
  readonly acknowledgeable = $derived(this.selectedAlerts.filter((a) => a.state !== 'resolved').length);
  grouping = $state<AlertGrouping>('none');
  /** The alerts in groups (one group, untitled, when not grouped), each newest first. */
  readonly alertGroups = $derived.by(() => {
    if (this.grouping === 'none') return [{ key: '', title: '', alerts: this.alerts }];
    const groups: { key: string; title: string; alerts: Alert[] }[] = [];
    for (const a of this.alerts) {
      const key = this.grouping === 'instance' ? a.instance : (a.subject ?? (a.addresses.length > 1 ? 'many addresses' : 'no address'));
      const group = groups.find((g) => g.key === key);
      if (group) group.alerts.push(a);
      else groups.push({ key, title: key, alerts: [a] });
    }
    return groups;
  });
  /** Rules snoozed on an instance, running now. */
  snoozes = $state<Snooze[]>([]);
  /** The snooze being asked for: the instance, the rules that may be chosen, and the form. */
  snoozing = $state<{ instance: string; rules: [string, string][] } | null>(null);
  snoozeRule = $state('');
  snoozeHours = $state(24);
  snoozeReason = $state('');
  readonly sorted = $derived(
    [...this.offenders].sort((a, b) =>
      this.sortKey === 'ip' ? a.ip.localeCompare(b.ip) : Number(b[this.sortKey]) - Number(a[this.sortKey]),
    ),
  );
  /** Not every offender is on this page. */
  readonly offendersCapped = $derived(this.offenderTotal > this.offenders.length);
  readonly hasNextOffenders = $derived(this.offenderOffset + this.offenders.length < this.offenderTotal);
  /** What was typed in the address search, trimmed and in lower case. */
  readonly addressPart = $derived(this.addressQuery.trim().toLowerCase());
  /** The sorted offenders whose address contains what was typed (any case, IPv6 too): at
   * once on the page shown, then every matching address from the host. */
  readonly shownOffenders = $derived.by(() => {
    const q = this.addressPart;
    return q ? this.sorted.filter((o) => o.ip.toLowerCase().includes(q)) : this.sorted;
  });
  readonly query: HeatmapQuery = $derived({
    kind: this.kind,
    window: this.range,
    instance: this.instance || null,
    service: this.service || null,
    theme: effectiveTheme(this.theme),
    scale: this.scale,
  });

  constructor(host: Host, options: HeatmapsOptions) {
    this.#host = host;
    this.#options = options;
  }

  get theme(): Theme {
    return this.#options.theme();
  }

  start(): () => void {
    const effects = $effect.root(() => {
      $effect(() => {
        void this.query;
        void this.showResolved;
        // Another window or scope starts at the first page.
        untrack(() => {
          this.offenderOffset = 0;
          void this.load();
        });
      });
      // A search asks the host for every address that matches, from the first page, once
      // typing settles.
      let searched = this.addressPart;
      $effect(() => {
        const part = this.addressPart;
        if (part === searched) return;
        const timer = setTimeout(() => {
          searched = part;
          this.offenderOffset = 0;
          void this.load();
        }, SEARCH_SETTLE_MS);
        return () => clearTimeout(timer);
      });
    });
    this.#host
      .instances()
      .then((list) => (this.instances = list))
      .catch((e) => (this.error = toHostError(e)));
    const timer = setInterval(() => void this.load(), REFRESH_MS);
    // The alerts list is cheap to read: while it is shown, a new alert appears within seconds.
    const alertsTimer = setInterval(() => {
      if (this.tab === 'alerts') void this.loadAlerts();
    }, ALERTS_REFRESH_MS);
    return () => {
      effects();
      clearInterval(timer);
      clearInterval(alertsTimer);
    };
  }

  async load(): Promise<void> {
    this.now = nowSeconds();
    const request = ++this.#latest;
    const address = this.addressPart;
    try {
      const [m, o, a] = await Promise.all([
        this.#host.heatmap(this.query),
        this.#host.offenders({
          window: this.range,
          instance: this.query.instance,
          service: this.query.service,
          limit: OFFENDER_LIMIT,
          offset: this.offenderOffset,
          address: address || null,
        }),
        this.#host.alerts(this.#alertFilter()),
      ]);
      if (request !== this.#latest) return;
      this.map = m;
      this.offenders = o.offenders;
      this.offenderTotal = o.total;
      this.offenderOffset = o.offset;
      this.offendersFor = address;
      this.alerts = a;
      this.error = null;
    } catch (e) {
      if (request === this.#latest) this.error = toHostError(e);
    }
  }

  /** The next or previous page of offenders. */
  async pageOffenders(direction: 1 | -1): Promise<void> {
    const next = this.offenderOffset + direction * OFFENDER_LIMIT;
    if (next < 0 || next >= Math.max(this.offenderTotal, 1)) return;
    this.offenderOffset = next;
    await this.load();
  }

  async loadAlerts(): Promise<void> {
    const request = this.#latest;
    try {
      const [a, s] = await Promise.all([this.#host.alerts(this.#alertFilter()), this.#host.snoozes()]);
      if (request === this.#latest) {
        this.alerts = a;
        this.snoozes = s;
      }
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** A rule's name as the listed alerts give it (its id when none of them does). */
  ruleName(id: string): string {
    for (const a of this.alerts) {
      const facet = a.facets.find((f) => f.rule_id === id);
      if (facet) return facet.rule_name;
      if (a.rule_id === id) return a.rule_name;
    }
    return id;
  }

  toggleSelected(id: number): void {
    this.selected = this.selected.includes(id) ? this.selected.filter((x) => x !== id) : [...this.selected, id];
  }

  /** Add every listed alert that is not resolved and shares the address, or a rule, with `a`. */
  selectLike(a: Alert, by: 'source' | 'rule'): void {
    const rules = a.facets.map((f) => f.rule_id).concat(a.rule_id);
    const like = this.alerts.filter((x) =>
      x.state === 'resolved'
        ? false
        : by === 'source'
          ? x.subject !== null && x.subject === a.subject
          : rules.includes(x.rule_id) || x.facets.some((f) => rules.includes(f.rule_id)),
    );
    const added = like.map((x) => x.id).filter((id) => !this.selected.includes(id));
    this.selected = [...this.selected, ...added];
  }

  clearSelection(): void {
    this.selected = [];
  }

  /** Acknowledge, resolve or reopen the chosen alerts, in one step. */
  async markSelected(state: AlertState): Promise<void> {
    // A resolved alert is done: acknowledging it would put it back on the list.
    const chosen = state === 'acknowledged' ? this.selectedAlerts.filter((a) => a.state !== 'resolved') : this.selectedAlerts;
    if (chosen.length === 0) return;
    const done = await this.#mark(chosen, state);
    if (done !== null) {
      this.selected = [];
      this.note = `${DONE[state]} ${alertsWord(done)}.`;
    }
  }

  /** Marks `alerts` at once; how many were marked, or null (the error is shown). */
  async #mark(alerts: Alert[], state: AlertState): Promise<number | null> {
    try {
      const marked = await this.#host.setAlertsState(
        alerts.map((a) => a.id),
        state,
      );
      this.alerts = this.alerts.map((x) => marked.alerts.find((a) => a.id === x.id) ?? x);
      return marked.alerts.length;
    } catch (e) {
      this.error = toHostError(e);
      return null;
    }
  }

  /** Ask to snooze a rule of `a` on its instance (the first rule that fired is chosen). */
  askSnooze(a: Alert): void {
    const rules = alertRules(a);
    const first = rules[0];
    if (!first) return;
    this.snoozing = { instance: a.instance, rules };
    this.snoozeRule = first[0];
    this.snoozeHours = 24;
    this.snoozeReason = '';
  }

  cancelSnooze(): void {
    this.snoozing = null;
  }

  async confirmSnooze(): Promise<void> {
    const asked = this.snoozing;
    const reason = this.snoozeReason.trim();
    if (!asked || reason === '') return;
    try {
      const s = await this.#host.snoozeRule({
        rule_id: this.snoozeRule,
        instance: asked.instance,
        hours: Number(this.snoozeHours),
        reason,
      });
      this.snoozing = null;
      const name = asked.rules.find(([id]) => id === s.rule_id)?.[1] ?? s.rule_id;
      this.note = `${name} is snoozed on ${s.instance} for ${SNOOZE_HOURS.find(([h]) => h === Number(this.snoozeHours))?.[1] ?? `${this.snoozeHours} hours`}: it raises no alert there until then.`;
      await this.loadAlerts();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async unsnooze(s: Snooze): Promise<void> {
    try {
      await this.#host.unsnoozeRule(s.rule_id, s.instance);
      this.note = `${s.rule_id} alerts on ${s.instance} again.`;
      await this.loadAlerts();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  showAlerts(): void {
    this.tab = 'alerts';
    void this.loadAlerts();
  }

  async setState(alert: Alert, state: AlertState): Promise<void> {
    try {
      const updated = await this.#host.setAlertState(alert.id, state);
      this.alerts = this.alerts.map((x) => (x.id === alert.id ? updated : x));
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Ask to acknowledge every new alert (the list is read first, so the count is current). */
  async askAcknowledgeAll(): Promise<void> {
    this.tab = 'alerts';
    await this.loadAlerts();
    if (this.newAlerts.length === 0) {
      this.note = 'No new alerts to acknowledge.';
      return;
    }
    this.note = null;
    this.acknowledging = this.newAlerts;
  }

  cancelAcknowledge(): void {
    this.acknowledging = null;
  }

  /** Acknowledge the alerts the operator confirmed: exactly those, not any that came since. */
  async acknowledgeAll(): Promise<void> {
    const confirmed = this.acknowledging ?? [];
    this.acknowledging = null;
    if (confirmed.length === 0) return;
    const done = await this.#mark(confirmed, 'acknowledged');
    this.note = `Acknowledged ${done ?? 0} of ${alertsWord(confirmed.length)}.`;
  }

  async exportAs(format: ImageFormat): Promise<void> {
    this.note = 'Saving the chart…';
    try {
      this.note = `Saved to ${await this.#host.exportHeatmap(this.query, format)}`;
    } catch (e) {
      this.note = null;
      this.error = toHostError(e);
    }
  }

  /** Open an incident about an offender: its address, the instances it hit, its window. */
  async incidentFor(o: Offender): Promise<void> {
    this.note = null;
    try {
      const view = await this.#host.openIncident({
        origin: 'offender',
        title: `Failed sign-ins from ${o.ip}`,
        severity: o.open_alerts > 0 ? 'high' : 'medium',
        instances: o.instances,
        ips: [o.ip],
        from_us: o.first_us - 3_600_000_000,
        to_us: Math.max(o.last_us, nowMicros()),
      });
      this.#options.onincident(view.incident.id);
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async incidentFromAlert(a: Alert): Promise<void> {
    this.note = null;
    try {
      this.#options.onincident((await this.#host.incidentFromAlert(a.id)).incident.id);
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  #alertFilter() {
    return { state: null, all: this.showResolved, instance: null, subject: null };
  }
}

const context = controllerContext('heatmaps', (host, options: HeatmapsOptions) => new HeatmapsController(host, options));

/** For the Heatmaps view: its controller, started and stopped with it. */
export const provideHeatmaps = context.provide;
/** For the Heatmaps view's parts. */
export const useHeatmaps = context.use;
