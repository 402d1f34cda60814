// The Rotation view's controller: the credential inventory (asked of the agents when the view
// opens), due dates by bucket and by day, rotation history, the key rotation period, and the
// single and bulk rotations under way.
import type { Credential } from '../../gen/Credential';
import type { CredentialInventory } from '../../gen/CredentialInventory';
import type { CredentialKind } from '../../gen/CredentialKind';
import type { InstanceView } from '../../gen/InstanceView';
import type { RotationRecord } from '../../gen/RotationRecord';
import { calendar, calendarEnd, dayKey, groupByDay, monthsToShow } from '../../lib/calendar';
import { nowSeconds } from '../../lib/clock';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import { renewsItself, wholeDays } from './due';
import { BulkRotation, KeyRotation } from './rotations.svelte';

export const KIND_WORD: Record<CredentialKind, string> = {
  api_key: 'API key',
  jwt_secret: 'JWT secret',
  agent_certificate: 'Agent certificate',
  client_certificate: 'Console certificate',
  fleet_ca: 'Fleet CA',
};

const BUCKETS: [string, number][] = [
  ['Overdue', 0],
  ['Due within 7 days', 7],
  ['Due within 30 days', 30],
  ['Due within 90 days', 90],
  ['Later', Infinity],
];

/** Keys the console can rotate; certificates renew themselves. */
export function isKey(c: Credential): boolean {
  return c.kind === 'api_key' || c.kind === 'jwt_secret';
}

/** Certificates the console renews on its clock: the operator's only when that fails. */
function automatic(c: Credential): boolean {
  return renewsItself(c) && c.status !== 'failing';
}

export class RotationController {
  readonly #host: Host;
  #loading: Promise<void> | null = null;

  inventory = $state<CredentialInventory | null>(null);
  instances = $state<InstanceView[] | null>(null);
  error = $state<HostError | null>(null);
  loading = $state(false);
  note = $state<string | null>(null);
  policyInstance = $state('');
  policyDays = $state(90);
  selectedDay = $state<string | null>(null);
  now = $state(nowSeconds());
  history = $state<RotationRecord[]>([]);
  /** The rotation dialog's transaction, while it is open. */
  single = $state<KeyRotation | null>(null);
  /** The bulk rotation dialog's, while it is open. */
  bulk = $state<BulkRotation | null>(null);

  readonly credentials = $derived(this.inventory?.credentials ?? []);
  /** The moment due dates are counted from: the inventory's own, as its status lines are. */
  readonly asOf = $derived(this.inventory?.checked_at ?? this.now);
  readonly grouped = $derived(
    [
      ...BUCKETS.map(([label, days], i) => {
        const lower = i === 0 ? -Infinity : BUCKETS[i - 1]![1];
        return {
          label,
          items: this.credentials.filter((c) => {
            if (automatic(c)) return false;
            if (c.due_at === null) return days === Infinity;
            // Whole days, as the status line counts them: "due in 7 days" is within 7 days.
            if (i === 0) return c.due_at <= this.asOf;
            const left = wholeDays(c.due_at, this.asOf);
            return c.due_at > this.asOf && (i === 1 || left > lower) && left <= days;
          }),
        };
      }),
      { label: 'Renewed automatically', items: this.credentials.filter(automatic) },
    ].filter((g) => g.items.length > 0),
  );
  /** Months from this one to the latest due date of what needs the operator, within a year. */
  readonly monthCount = $derived(monthsToShow(this.credentials.filter((c) => !automatic(c)), this.now));
  readonly months = $derived(calendar(this.now, this.monthCount));
  /** What falls due after the calendar's last day, soonest first. */
  readonly beyondCalendar = $derived(
    this.credentials.filter((c) => c.due_at !== null && c.due_at >= calendarEnd(this.now, this.monthCount)),
  );
  readonly today = $derived(dayKey(this.now));
  /** Keys overdue, due within 30 days or weak: what "Rotate all due" takes. */
  readonly dueKeys = $derived(this.credentials.filter((c) => isKey(c) && (c.status === 'failing' || c.status === 'warning')));
  readonly byDay = $derived(groupByDay(this.credentials, this.now));
  readonly shownList = $derived(this.selectedDay ? (this.byDay.get(this.selectedDay) ?? []) : null);

  constructor(host: Host) {
    this.#host = host;
  }

  start(): () => void {
    this.#host
      .instances()
      .then((list) => {
        this.instances = list;
        this.policyInstance = list[0]?.name ?? '';
      })
      .catch((e) => (this.error = toHostError(e)));
    this.#loading = this.load();
    return () => this.bulk?.stop();
  }

  async load(): Promise<void> {
    this.loading = true;
    this.now = nowSeconds();
    try {
      this.inventory = await this.#host.credentials();
      this.history = await this.#host.rotationHistory(20);
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.loading = false;
    }
  }

  /** A day with something due shows only that; choosing it again, or an empty day, shows all. */
  chooseDay(key: string, due: number): void {
    this.selectedDay = this.selectedDay === key || due === 0 ? null : key;
  }

  async savePolicy(days: number | null): Promise<void> {
    const instance = this.policyInstance;
    if (!instance) return;
    this.note = null;
    try {
      await this.#host.setKeyRotationDays(instance, days);
      this.note = days === null ? `${instance}: back to every 90 days.` : `${instance}: API keys due every ${days} days.`;
      await this.load();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  rotate(credential: Credential): void {
    this.note = null;
    this.single = new KeyRotation(this.#host, credential);
    void this.single.load();
  }

  /**
   * Lead to a rotation asked for elsewhere (the command palette), once the inventory is read:
   * the bulk dialog with its typed confirmation, or the keys with a word on choosing one.
   * Returns the control to focus (the first key's Rotate…), or null. Nothing is rotated here.
   */
  async prepare(kind: 'rotate-key' | 'rotate-due', target?: { instance: string; name: string }): Promise<string | null> {
    await (this.#loading ?? this.load());
    if (target) {
      // One key asked for by name (a compliance finding's fix): its preview, which asks first.
      const credential = this.credentials.find((c) => isKey(c) && c.instance === target.instance && c.name === target.name);
      if (credential) this.rotate(credential);
      else this.note = `${target.name} on ${target.instance} is not in the inventory now: refresh the instance, or choose the key below.`;
      return null;
    }
    if (kind === 'rotate-due') {
      if (this.dueKeys.length === 0) this.note = 'No key is overdue, due within 30 days or weak: nothing to rotate now.';
      else this.rotateAllDue();
      return null;
    }
    if (!this.credentials.some(isKey)) {
      this.note = 'No key to rotate: agents report their service\'s keys when service_dir is set in their config.';
      return null;
    }
    this.selectedDay = null;
    this.note = 'Choose the key to rotate: its Rotate… shows what will change and asks before anything does.';
    return '[data-credential] [data-rotate]';
  }

  rotateAllDue(): void {
    this.bulk = new BulkRotation(this.#host, this.dueKeys);
  }

  /** A dialog closed; what it rotated is read again. */
  closed(rotated: boolean): void {
    this.single = null;
    this.bulk = null;
    if (rotated) void this.load();
  }
}

const context = controllerContext('rotation', (host) => new RotationController(host));

/** For the Rotation view: its controller, started and stopped with it. */
export const provideRotation = context.provide;
/** For the Rotation view's parts. */
export const useRotation = context.use;
