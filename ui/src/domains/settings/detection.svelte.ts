// The detection rules and the allowlist, edited in place and saved together.
import type { DetectionSettings } from '../../gen/DetectionSettings';
import type { PolicyOverview } from '../../gen/PolicyOverview';
import type { ReplayReport } from '../../gen/ReplayReport';
import { toHostError, type Host, type HostError } from '../../lib/host';

export class DetectionController {
  readonly #host: Host;

  settings = $state<DetectionSettings | null>(null);
  /** The allowlist as typed: one address or network a line. */
  allowlist = $state('');
  error = $state<HostError | null>(null);
  saved = $state<string | null>(null);
  /** The agents' policy: its version and which one each agent runs. */
  policy = $state<PolicyOverview | null>(null);
  /** The rules and allowlist as edited, run over the stored month; null until asked. */
  replay = $state<ReplayReport | null>(null);
  replaying = $state(false);

  constructor(host: Host) {
    this.#host = host;
  }

  load(): void {
    this.#host
      .detection()
      .then((next) => {
        this.#show(next);
        this.error = null;
      })
      .catch((e) => (this.error = toHostError(e)));
    this.loadPolicy();
  }

  loadPolicy(): void {
    this.#host
      .policyOverview()
      .then((next) => (this.policy = next))
      .catch((e) => (this.error = toHostError(e)));
  }

  async save(): Promise<void> {
    if (!this.settings) return;
    this.saved = null;
    try {
      const list = this.#allowlist();
      this.#show(await this.#host.setDetection({ rules: this.settings.rules, allowlist: list }));
      this.error = null;
      this.saved = 'Saved. The rules apply to events from now on; each agent gets them at its next sync.';
      this.loadPolicy();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Run the rules and allowlist as edited over the last 30 days of stored failures. */
  async preview(): Promise<void> {
    if (!this.settings) return;
    this.replaying = true;
    this.replay = null;
    try {
      this.replay = await this.#host.replayRules({ rules: this.settings.rules, allowlist: this.#allowlist() });
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.replaying = false;
    }
  }

  #allowlist(): string[] {
    return this.allowlist
      .split(/[\s,]+/)
      .map((a) => a.trim())
      .filter(Boolean);
  }

  async reset(): Promise<void> {
    try {
      this.#show(await this.#host.resetDetection());
      this.error = null;
      this.saved = "Back to the guides' rules.";
      this.loadPolicy();
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  #show(next: DetectionSettings): void {
    this.settings = next;
    this.allowlist = next.allowlist.join('\n');
  }
}
