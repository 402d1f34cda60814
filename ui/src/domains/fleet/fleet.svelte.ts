// The Fleet view's controller: the instances, polled while the view is shown, and what the
// operator does to them (enroll, refresh, revoke, remove).
import type { AddInstance } from '../../gen/AddInstance';
import type { InstanceView } from '../../gen/InstanceView';
import type { SyncState } from '../../gen/SyncState';
import { nowSeconds } from '../../lib/clock';
import { controllerContext } from '../../lib/context';
import { emptyFilter, type TimelinePreset } from '../../lib/preset';
import { toHostError, type Host, type HostError } from '../../lib/host';

/** How often the list is re-read from the console (the backend contacts agents every minute). */
const POLL_MS = 15_000;
/** How often the event pulls' state is re-read: the console pulls every second. */
const SYNC_MS = 2_000;

export interface FleetOptions {
  /** Something the overview counts changed: an instance added, refreshed, revoked or removed. */
  onchange: () => void;
  /** Show an instance's lines that no format understood, on the timeline. */
  onunparsed?: (preset: TimelinePreset) => void;
}

/** A revocation or removal waiting for the operator to confirm it. */
export interface Pending {
  kind: 'revoke' | 'remove';
  instance: InstanceView;
}

/** The enrollment dialog's call: busy while the agent is contacted, and why it failed. */
export class Enrollment {
  busy = $state(false);
  error = $state<HostError | null>(null);

  readonly #host: Host;
  readonly #onadded: (instance: InstanceView) => void;

  constructor(host: Host, onadded: (instance: InstanceView) => void) {
    this.#host = host;
    this.#onadded = onadded;
  }

  /** Enroll; true once the instance is added (the dialog stays open with the reason if not). */
  submit(request: AddInstance): Promise<boolean> {
    return this.#enroll(() => this.#host.addInstance(request));
  }

  /** Enroll with the code on the clipboard, which the shell reads: the window never sees it. */
  submitFromClipboard(name: string, address: string, profile: string): Promise<boolean> {
    return this.#enroll(() => this.#host.addInstanceFromClipboard(name, address, profile));
  }

  async #enroll(add: () => Promise<InstanceView>): Promise<boolean> {
    this.busy = true;
    this.error = null;
    try {
      this.#onadded(await add());
      return true;
    } catch (e) {
      this.error = toHostError(e);
      return false;
    } finally {
      this.busy = false;
    }
  }
}

export class FleetController {
  instances = $state<InstanceView[] | null>(null);
  error = $state<HostError | null>(null);
  /** What each instance is busy with, by name ("Revoking…"). */
  busy = $state<Record<string, string>>({});
  refreshingAll = $state(false);
  /** What a control the operator was led to does (from the palette), until it is used. */
  note = $state<string | null>(null);
  now = $state(nowSeconds());
  enrollment = $state<Enrollment | null>(null);
  pending = $state<Pending | null>(null);
  /** Each instance's event pull: more recent than its last contact while events flow. */
  sync = $state<SyncState[]>([]);

  readonly #host: Host;
  readonly #options: FleetOptions;

  constructor(host: Host, options: FleetOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** How many of `instance`'s lines no format understood (0 before its first pull). */
  unparsed(instance: string): number {
    return this.sync.find((s) => s.instance === instance)?.unparsed ?? 0;
  }

  /** Show `instance`'s unparsed lines on the timeline, newest first. */
  showUnparsed(instance: string): void {
    this.#options.onunparsed?.({
      label: `Lines from ${instance} that no format understood`,
      filter: { ...emptyFilter(), instance, kind: 'unparsed' },
    });
  }

  start(): () => void {
    void this.load();
    void this.loadSync();
    const timer = setInterval(() => void this.load(), POLL_MS);
    const syncTimer = setInterval(() => void this.loadSync(), SYNC_MS);
    return () => {
      clearInterval(timer);
      clearInterval(syncTimer);
    };
  }

  async loadSync(): Promise<void> {
    try {
      this.sync = await this.#host.syncStates();
      this.now = nowSeconds();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async load(): Promise<void> {
    try {
      this.instances = await this.#host.instances();
      this.now = nowSeconds();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async refreshAll(): Promise<void> {
    this.refreshingAll = true;
    this.note = null;
    this.error = null;
    try {
      const summary = await this.#host.refreshAll();
      this.instances = summary.instances;
      this.now = nowSeconds();
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.refreshingAll = false;
      this.#options.onchange();
    }
  }

  refresh(name: string): Promise<void> {
    return this.#act(name, 'Contacting…', () => this.#host.refreshInstance(name));
  }

  /** Ask before revoking or removing: the dialog names the target and the impact. */
  ask(kind: Pending['kind'], instance: InstanceView): void {
    this.pending = { kind, instance };
  }

  cancel(): void {
    this.pending = null;
  }

  confirm(): void {
    if (!this.pending) return;
    const { kind, instance } = this.pending;
    this.pending = null;
    if (kind === 'revoke') void this.#act(instance.name, 'Revoking…', () => this.#host.revokeInstance(instance.name));
    else void this.#act(instance.name, 'Removing…', () => this.#host.removeInstance(instance.name));
  }

  openEnrollment(): void {
    this.enrollment = new Enrollment(this.#host, () => {
      this.enrollment = null;
      void this.load();
      this.#options.onchange();
    });
  }

  closeEnrollment(): void {
    this.enrollment = null;
  }

  dismissError(): void {
    this.error = null;
  }

  async #act(name: string, label: string, action: () => Promise<unknown>): Promise<void> {
    this.busy = { ...this.busy, [name]: label };
    this.error = null;
    try {
      await action();
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.busy = Object.fromEntries(Object.entries(this.busy).filter(([key]) => key !== name));
      await this.load();
      this.#options.onchange();
    }
  }
}

const context = controllerContext('fleet', (host, options: FleetOptions) => new FleetController(host, options));

/** For the Fleet view: its controller, started and stopped with it. */
export const provideFleet = context.provide;
/** For the Fleet view's parts. */
export const useFleet = context.use;
