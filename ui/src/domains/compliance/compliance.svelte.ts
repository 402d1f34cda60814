// The Compliance view's controller: scorecards and items for the chosen instance and filter,
// running the checks, the report, and the selected item with what an operator does to it
// (owner and due date, sign-off, evidence, waiver) and its history.
import type { ComplianceView } from '../../gen/ComplianceView';
import type { EvidenceKind } from '../../gen/EvidenceKind';
import type { HistoryEntry } from '../../gen/HistoryEntry';
import type { ItemFilter } from '../../gen/ItemFilter';
import type { ItemView } from '../../gen/ItemView';
import type { ReportFormat } from '../../gen/ReportFormat';
import type { WaiverKind } from '../../gen/WaiverKind';
import { nowSeconds } from '../../lib/clock';
import { addDays, dayStartUtc, dayText, parseDay, utcDay, type Day } from '../../lib/dates';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';

/** The longest a waiver may run: the core refuses more (`MAX_WAIVER` in compliance.rs). */
export const MAX_WAIVER_DAYS = 2 * 365;
/** A new waiver's end, unless the operator chooses another: a quarter on. */
export const DEFAULT_WAIVER_DAYS = 90;
const DAY = 86_400;

/** Why a waiver cannot end on `day` at `now` (Unix seconds), as the core would refuse it. A
 * waiver ends as its day begins (00:00 UTC), which must be in the future. */
export function waiverProblem(day: Day, now: number): string | null {
  const ends = dayStartUtc(day);
  if (ends <= now) return 'choose a day after today: a waiver must end in the future';
  if (ends > now + MAX_WAIVER_DAYS * DAY) return 'a waiver runs two years at most; renew it when it ends';
  return null;
}

export class ComplianceController {
  readonly #host: Host;

  view = $state<ComplianceView | null>(null);
  error = $state<HostError | null>(null);
  /** Why a change to the selected item failed, shown in its panel. */
  formError = $state<HostError | null>(null);
  filter = $state<ItemFilter | null>(null);
  instance = $state<string | null>(null);
  running = $state(false);
  note = $state<string | null>(null);
  selected = $state<ItemView | null>(null);
  history = $state<HistoryEntry[]>([]);
  now = $state(nowSeconds());

  // The fields of the detail panel's forms.
  signNote = $state('');
  owner = $state('');
  due = $state('');
  evidenceKind = $state<EvidenceKind>('note');
  evidenceText = $state('');
  waiverKind = $state<WaiverKind>('accepted_risk');
  waiverReason = $state('');
  waiverApprover = $state('');
  waiverUntil = $state(dayText(addDays(utcDay(nowSeconds()), DEFAULT_WAIVER_DAYS)));

  readonly today = $derived(utcDay(this.now));
  readonly dueDay = $derived(parseDay(this.due));
  readonly waiverDay = $derived(parseDay(this.waiverUntil));
  /** Owner and due date can be saved: the due date is empty or a day. */
  readonly canAssign = $derived(this.dueDay.kind !== 'invalid');
  /** The waiver can be asked for: its end is a day the core accepts (the core says what else
   * is missing). */
  readonly canWaive = $derived(this.waiverDay.kind === 'ok' && waiverProblem(this.waiverDay.value, this.now) === null);

  readonly lastRun = $derived(
    this.view?.instances
      .map((i) => i.last_run)
      .filter((t): t is number => t !== null)
      .sort((a, b) => b - a)[0] ?? null,
  );

  constructor(host: Host) {
    this.#host = host;
  }

  start(): () => void {
    void this.load();
    return () => {};
  }

  async load(): Promise<void> {
    this.now = nowSeconds();
    try {
      const view = await this.#host.compliance({ instance: this.instance, filter: this.filter });
      this.view = view;
      this.error = null;
      const s = this.selected;
      if (s) this.selected = view.instances.flatMap((i) => i.items).find((i) => i.instance === s.instance && i.id === s.id) ?? s;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Show one instance only; choosing it again shows them all. */
  toggleInstance(name: string): void {
    this.instance = this.instance === name ? null : name;
    void this.load();
  }

  showAllInstances(): void {
    this.instance = null;
    void this.load();
  }

  show(filter: ItemFilter | null): void {
    this.filter = filter;
    void this.load();
  }

  async runNow(): Promise<void> {
    this.running = true;
    this.note = null;
    try {
      const run = await this.#host.runChecks(this.instance);
      const parts = [`Ran ${run.checks} checks on ${run.instances} instance${run.instances === 1 ? '' : 's'}.`];
      if (run.reopened.length) parts.push(`Re-opened: ${run.reopened.join('; ')}.`);
      if (run.errors.length) parts.push(`Could not check: ${run.errors.join('; ')}.`);
      this.note = parts.join(' ');
      await this.load();
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.running = false;
    }
  }

  async exportReport(format: ReportFormat): Promise<void> {
    this.note = null;
    try {
      this.note = `Report saved to ${await this.#host.exportCompliance(format)}`;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async open(item: ItemView): Promise<void> {
    this.selected = item;
    this.formError = null;
    this.owner = item.owner ?? '';
    this.due = item.due_at ? dayText(utcDay(item.due_at)) : '';
    this.now = nowSeconds();
    this.waiverUntil = dayText(addDays(utcDay(this.now), DEFAULT_WAIVER_DAYS));
    try {
      this.history = await this.#host.itemHistory(item.instance, item.id);
    } catch (e) {
      this.formError = toHostError(e);
    }
  }

  close(): void {
    this.selected = null;
  }

  signOff(): Promise<void> {
    return this.#change(
      (it) => this.#host.signOffItem(it.instance, it.id, this.signNote),
      () => (this.signNote = ''),
    );
  }

  assign(): Promise<void> {
    const due = this.dueDay;
    if (due.kind === 'invalid') return Promise.resolve();
    return this.#change((it) => this.#host.assignItem(it.instance, it.id, this.owner || null, due.kind === 'ok' ? dayStartUtc(due.value) : null));
  }

  addEvidence(): Promise<void> {
    return this.#change(
      (it) => this.#host.addItemEvidence(it.instance, it.id, { kind: this.evidenceKind, text: this.evidenceText }),
      () => (this.evidenceText = ''),
    );
  }

  waive(): Promise<void> {
    const until = this.waiverDay;
    if (until.kind !== 'ok') return Promise.resolve();
    return this.#change(
      (it) =>
        this.#host.waiveItem(it.instance, it.id, {
          kind: this.waiverKind,
          reason: this.waiverReason,
          approved_by: this.waiverApprover,
          expires_at: dayStartUtc(until.value),
        }),
      () => (this.waiverReason = ''),
    );
  }

  endWaiver(): Promise<void> {
    return this.#change((it) => this.#host.endWaiver(it.instance, it.id));
  }

  /** Run a change of the selected item; the panel shows the result or says why it failed. */
  async #change(action: (item: ItemView) => Promise<ItemView>, after?: () => void): Promise<void> {
    if (!this.selected) return;
    this.formError = null;
    try {
      const item = await action(this.selected);
      this.selected = item;
      after?.();
      this.history = await this.#host.itemHistory(item.instance, item.id);
      await this.load();
    } catch (e) {
      this.formError = toHostError(e);
    }
  }
}

const context = controllerContext('compliance', (host) => new ComplianceController(host));

/** For the Compliance view: its controller, started and stopped with it. */
export const provideCompliance = context.provide;
/** For the Compliance view's parts. */
export const useCompliance = context.use;
