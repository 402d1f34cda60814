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
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';

/** A date field's `2026-11-23` as Unix seconds at the start of that UTC day; null if empty. */
function day(text: string): number | null {
  return text ? Math.floor(Date.parse(`${text}T00:00:00Z`) / 1000) : null;
}

/** Unix seconds as a date field's `2026-11-23` (UTC). */
function dateField(unix: number): string {
  return new Date(unix * 1000).toISOString().slice(0, 10);
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
  waiverUntil = $state('');

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
    this.due = item.due_at ? dateField(item.due_at) : '';
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
    return this.#change((it) => this.#host.assignItem(it.instance, it.id, this.owner || null, day(this.due)));
  }

  addEvidence(): Promise<void> {
    return this.#change(
      (it) => this.#host.addItemEvidence(it.instance, it.id, { kind: this.evidenceKind, text: this.evidenceText }),
      () => (this.evidenceText = ''),
    );
  }

  waive(): Promise<void> {
    return this.#change(
      (it) =>
        this.#host.waiveItem(it.instance, it.id, {
          kind: this.waiverKind,
          reason: this.waiverReason,
          approved_by: this.waiverApprover,
          expires_at: day(this.waiverUntil) ?? 0,
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
