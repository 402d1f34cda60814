// The Timeline view's controller: the filters, pages of events newest first, live polling that
// keeps the operator's place, the selected event's raw line, export, and an incident from a
// preset's events.
import type { Cursor } from '../../gen/Cursor';
import type { EventFilter } from '../../gen/EventFilter';
import type { ExportFormat } from '../../gen/ExportFormat';
import type { InstanceView } from '../../gen/InstanceView';
import type { Kind } from '../../gen/Kind';
import type { Outcome } from '../../gen/Outcome';
import type { SyncState } from '../../gen/SyncState';
import type { TimelineEvent } from '../../gen/TimelineEvent';
import { nowMicros, nowSeconds } from '../../lib/clock';
import { parseLocalTime } from '../../lib/dates';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import { servicesOf } from '../../lib/instances';
import type { TimelinePreset } from '../../lib/preset';
import { arrivals } from './arrivals';
import { eventKey as key } from './format';
import { groupRequests } from './requests';

/** Row height in pixels: fixed, so only the visible rows need to exist. */
export const ROW = 30;
export const OVERSCAN = 12;
const PAGE = 200;
const LIVE_MS = 2000;
/** Filters settle for this long before the list is asked for again (typing in a field). */
const SETTLE_MS = 250;

export const RANGES: readonly (readonly [string, string, number])[] = [
  ['15m', 'Last 15 minutes', 15 * 60],
  ['1h', 'Last hour', 3600],
  ['24h', 'Last 24 hours', 86400],
  ['7d', 'Last 7 days', 7 * 86400],
  ['all', 'All time', 0],
];

export interface TimelineOptions {
  /** A filter chosen elsewhere (a heatmap cell, an offender, an alert), or null. */
  preset: () => TimelinePreset | null;
  /** Show an incident just opened from the preset's events. */
  onincident: (id: number) => void;
}

/** Whether two pages hold the same events, in order (events are immutable once stored). */
function samePage(a: TimelineEvent[], b: TimelineEvent[]): boolean {
  return a.length === b.length && a.every((e, i) => key(e) === key(b[i]!));
}

export class TimelineController {
  readonly #host: Host;
  readonly #options: TimelineOptions;

  range = $state('24h');
  instance = $state('');
  service = $state('');
  kind = $state<Kind | ''>('');
  outcome = $state<Outcome | ''>('');
  ip = $state('');
  keyPrefix = $state('');
  path = $state('');
  text = $state('');
  /** A time range of the operator's own, as typed (local time); it replaces `range`. */
  from = $state('');
  to = $state('');
  live = $state(true);

  /** Replaced whole, never changed in place: not deeply reactive, so a page of events costs
   * no proxies. */
  events = $state.raw<TimelineEvent[]>([]);
  next = $state<Cursor | null>(null);
  loaded = $state(false);
  loadingMore = $state(false);
  error = $state<HostError | null>(null);
  instances = $state<InstanceView[] | null>(null);
  sync = $state.raw<SyncState[]>([]);
  selected = $state(-1);
  /** The selected event's raw line: null when the console has none for it (see `rawRead`). */
  raw = $state<string | null>(null);
  /** Whether the host has answered for the selected event's raw line. */
  rawRead = $state(false);
  exported = $state<string | null>(null);
  /** What a control the operator was led to does (from the palette), until it is used. */
  note = $state<string | null>(null);
  now = $state(nowSeconds());
  olderArrived = $state(false);

  // The list's window onto the events: only rows near it are drawn.
  scrollTop = $state(0);
  viewport = $state(600);
  /** The scrolling list element, so a reload can go back to the top and live rows keep the
   * operator's place. */
  list: HTMLElement | undefined;

  readonly services = $derived(servicesOf(this.instances));
  readonly first = $derived(Math.max(0, Math.floor(this.scrollTop / ROW) - OVERSCAN));
  /** The rows shown: one per request, however many lines its service wrote for it. */
  readonly rows = $derived(groupRequests(this.events));
  readonly last = $derived(Math.min(this.rows.length, Math.ceil((this.scrollTop + this.viewport) / ROW) + OVERSCAN));
  readonly visible = $derived(this.rows.slice(this.first, this.last));
  /** The selected row's lines (one for most rows). */
  readonly currentParts = $derived(this.selected >= 0 ? (this.rows[this.selected]?.parts ?? []) : []);
  readonly current = $derived(this.selected >= 0 ? this.rows[this.selected]?.lead : undefined);
  readonly syncProblems = $derived(this.sync.filter((s) => s.last_error));
  readonly fromTime = $derived(parseLocalTime(this.from));
  readonly toTime = $derived(parseLocalTime(this.to));
  /** Whether From or To is filled in: they replace the chosen range. */
  readonly custom = $derived(this.fromTime.kind !== 'empty' || this.toTime.kind !== 'empty');
  /** What is wrong with From and To, in words; the list keeps what it shows until they are right. */
  readonly rangeError = $derived.by(() => {
    if (this.fromTime.kind === 'invalid') return `From: ${this.fromTime.reason}.`;
    if (this.toTime.kind === 'invalid') return `To: ${this.toTime.reason}.`;
    if (this.fromTime.kind === 'ok' && this.toTime.kind === 'ok' && this.toTime.value <= this.fromTime.value) return 'To must be after From.';
    return null;
  });
  readonly lastSync = $derived(Math.max(0, ...this.sync.map((s) => s.last_sync ?? 0)) / 1e6);
  readonly #filterKey = $derived(
    JSON.stringify([this.range, this.from, this.to, this.instance, this.service, this.kind, this.outcome, this.ip, this.keyPrefix, this.path, this.text, this.preset]),
  );

  constructor(host: Host, options: TimelineOptions) {
    this.#host = host;
    this.#options = options;
  }

  get preset(): TimelinePreset | null {
    return this.#options.preset();
  }

  start(): () => void {
    const effects = $effect.root(() => {
      $effect(() => {
        void this.#filterKey;
        // A half-typed range asks for nothing: the list stays as it was until it reads right.
        if (this.rangeError) return;
        const timer = setTimeout(() => void this.reload(), SETTLE_MS);
        return () => clearTimeout(timer);
      });
      $effect(() => {
        if (this.last > this.rows.length - OVERSCAN && this.next) void this.loadMore();
      });
    });
    this.#host
      .instances()
      .then((list) => (this.instances = list))
      .catch((e) => (this.error = toHostError(e)));
    void this.poll();
    const timer = setInterval(() => void this.poll(), LIVE_MS);
    return () => {
      effects();
      clearInterval(timer);
    };
  }

  filter(): EventFilter {
    // A preset stands for exactly its events; free text still narrows within them.
    if (this.preset) return { ...this.preset.filter, text: this.text.trim() || null };
    const seconds = RANGES.find(([r]) => r === this.range)?.[2] ?? 0;
    const [from, to] = [this.fromTime, this.toTime];
    const custom = this.custom && !this.rangeError;
    return {
      from_us: custom ? (from.kind === 'ok' ? from.value * 1000 : null) : seconds ? Math.floor(nowMicros() - seconds * 1e6) : null,
      to_us: custom && to.kind === 'ok' ? to.value * 1000 : null,
      instance: this.instance || null,
      service: this.service || null,
      kind: this.kind || null,
      outcome: this.outcome || null,
      ip: this.ip.trim() || null,
      key_prefix: this.keyPrefix.trim() || null,
      path: this.path.trim() || null,
      text: this.text.trim() || null,
      source: null,
      hours: null,
      attempts: false,
    };
  }

  async reload(): Promise<void> {
    try {
      const page = await this.#host.events(this.filter(), null, PAGE);
      this.events = page.events;
      this.next = page.next;
      this.selected = -1;
      this.raw = null;
      this.rawRead = false;
      this.error = null;
      this.olderArrived = false;
      if (this.list) this.list.scrollTop = 0;
      this.scrollTop = 0;
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.loaded = true;
    }
  }

  async loadMore(): Promise<void> {
    if (!this.next || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const page = await this.#host.events(this.filter(), this.next, PAGE);
      this.events = [...this.events, ...page.events];
      this.next = page.next;
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.loadingMore = false;
    }
  }

  /** Live mode. At the top of the list the first page is simply refreshed: agents also
   * backfill older lines (a log read from its start), which belong below the top. Scrolled
   * away, the operator's place is kept: newer events are put on top, and older arrivals are
   * offered as a reload. */
  async poll(): Promise<void> {
    try {
      const following = this.live && this.loaded && !this.rangeError;
      const [sync, page] = await Promise.all([this.#host.syncStates(), following ? this.#host.events(this.filter(), null, PAGE) : null]);
      // Everything a poll changes is changed at once, after both answers: each change on its
      // own would be a frame of its own, and without a GPU WebKitGTK composites every frame
      // of the whole window in software.
      this.now = nowSeconds();
      if (JSON.stringify(sync) !== JSON.stringify(this.sync)) this.sync = sync;
      if (!page || !this.live || !this.loaded || this.rangeError) return;
      if (this.scrollTop === 0 && this.selected < 0) {
        // Nothing new: nothing is drawn again.
        if (!samePage(this.events, page.events)) this.events = page.events;
        this.next = page.next;
        this.olderArrived = false;
        return;
      }
      const { newer, older } = arrivals(this.events, page.events);
      if (newer.length > 0) {
        const shown = this.current ? key(this.current) : null;
        const before = this.rows.length;
        this.events = [...newer, ...this.events];
        // Rows, not lines: a new line may join a row already shown.
        const added = this.rows.length - before;
        if (shown !== null) {
          this.selected = this.rows.findIndex((r) => r.parts.some((p) => key(p) === shown));
          // A newer line may lead the row now (the proxy's line of the same request): its
          // raw line is the one to show.
          if (this.current && key(this.current) !== shown) void this.select(this.selected);
        }
        if (this.list) this.list.scrollTop += added * ROW;
      }
      if (older) this.olderArrived = true;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Show an event's details and fetch its raw line (kept only if it is still the one shown). */
  async select(index: number): Promise<void> {
    this.selected = index;
    this.raw = null;
    this.rawRead = false;
    const e = this.rows[index]?.lead;
    if (!e) return;
    const wanted = key(e);
    try {
      const line = await this.#host.eventRaw(e.instance, e.seq);
      if (this.current && key(this.current) === wanted) {
        this.raw = line;
        this.rawRead = true;
      }
    } catch (err) {
      this.error = toHostError(err);
      if (this.current && key(this.current) === wanted) this.rawRead = true;
    }
  }

  close(): void {
    this.selected = -1;
  }

  /** A range from the list (which drops From and To), or 'custom' (which keeps them). */
  chooseRange(range: string): void {
    if (range === 'custom') return;
    this.range = range;
    this.clearTimes();
  }

  clearTimes(): void {
    this.from = '';
    this.to = '';
  }

  reloadOlder(): void {
    this.olderArrived = false;
    void this.reload();
  }

  syncNow(): void {
    this.note = null;
    this.#host
      .syncNow()
      .then(() => this.poll())
      .catch((e) => (this.error = toHostError(e)));
  }

  async exportAs(format: ExportFormat): Promise<void> {
    this.exported = 'Exporting…';
    try {
      const result = await this.#host.exportEvents(this.filter(), format);
      this.exported = `Saved ${result.events} events to ${result.path}`;
    } catch (e) {
      this.exported = null;
      this.error = toHostError(e);
    }
  }

  /** Open an incident about exactly the preset's events (a heatmap cell, say): its instance
   * (or every instance), its address if it has one, and its time span. */
  async incidentFromPreset(): Promise<void> {
    const preset = this.preset;
    if (!preset) return;
    const f = preset.filter;
    const hours = f.hours ?? [];
    const from = hours.length ? Math.min(...hours) * 3_600_000_000 : (f.from_us ?? nowMicros() - 86_400_000_000);
    const to = hours.length ? (Math.max(...hours) + 1) * 3_600_000_000 : (f.to_us ?? nowMicros());
    try {
      const view = await this.#host.openIncident({
        origin: 'timeline',
        title: preset.label,
        severity: 'medium',
        instances: f.instance ? [f.instance] : (this.instances ?? []).map((i) => i.name),
        ips: f.ip ? [f.ip] : [],
        from_us: from,
        to_us: Math.max(to, from + 1),
      });
      this.#options.onincident(view.incident.id);
    } catch (e) {
      this.error = toHostError(e);
    }
  }
}

const context = controllerContext('timeline', (host, options: TimelineOptions) => new TimelineController(host, options));

/** For the Timeline view: its controller, started and stopped with it. */
export const provideTimeline = context.provide;
/** For the Timeline view's parts. */
export const useTimeline = context.use;
