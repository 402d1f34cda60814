// Rotations under way, one per dialog: a key (preview, confirm, run, result) and every due key
// at once (progress, then a summary). The new key never comes to the window: only a message
// that it is on the clipboard.
import type { BulkItem } from '../../gen/BulkItem';
import type { Credential } from '../../gen/Credential';
import type { RotationPreview } from '../../gen/RotationPreview';
import type { RotationResult } from '../../gen/RotationResult';
import { toHostError, type Host, type HostError } from '../../lib/host';

/** How often a bulk rotation's progress is asked for. */
const PROGRESS_MS = 500;

export class KeyRotation {
  readonly #host: Host;
  readonly credential: Credential;

  preview = $state<RotationPreview | null>(null);
  result = $state<RotationResult | null>(null);
  running = $state(false);
  error = $state<HostError | null>(null);
  copied = $state<string | null>(null);

  constructor(host: Host, credential: Credential) {
    this.#host = host;
    this.credential = credential;
  }

  get instance(): string {
    return this.credential.instance ?? '';
  }

  async load(): Promise<void> {
    try {
      this.preview = await this.#host.rotationPreview(this.instance, this.credential.name);
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async run(): Promise<void> {
    this.running = true;
    this.error = null;
    try {
      this.result = await this.#host.rotateKey(this.instance, this.credential.name);
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.running = false;
    }
  }

  async copy(): Promise<void> {
    try {
      this.copied = await this.#host.copyRotatedKey(null);
    } catch (e) {
      this.error = toHostError(e);
    }
  }
}

export class BulkRotation {
  readonly #host: Host;
  readonly credentials: Credential[];
  #timer: ReturnType<typeof setInterval> | undefined;

  running = $state(false);
  progress = $state<[number, number]>([0, 0]);
  items = $state<BulkItem[] | null>(null);
  error = $state<HostError | null>(null);
  copied = $state<Record<string, string>>({});

  /** What the operator types to confirm. */
  readonly scope: string;
  readonly committed = $derived((this.items ?? []).filter((i) => i.result?.committed).length);

  constructor(host: Host, credentials: Credential[]) {
    this.#host = host;
    this.credentials = credentials;
    this.scope = `${credentials.length} keys`;
  }

  async run(): Promise<void> {
    this.running = true;
    this.error = null;
    this.progress = [0, this.credentials.length];
    this.#timer = setInterval(() => {
      this.#host
        .bulkProgress()
        .then((p) => (this.progress = p))
        // Progress is only a nicety: the summary says how each key ended.
        .catch(() => {});
    }, PROGRESS_MS);
    try {
      this.items = await this.#host.rotateMany(this.credentials.map((c) => [c.instance ?? '', c.name]));
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.stop();
      this.running = false;
    }
  }

  async copy(label: string): Promise<void> {
    try {
      this.copied = { ...this.copied, [label]: await this.#host.copyRotatedKey(label) };
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Stop asking for progress (the run ended, or the view went away). */
  stop(): void {
    clearInterval(this.#timer);
  }
}
