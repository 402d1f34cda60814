// "Why is this address blocked?": asked of every instance at once, with every decision the
// agents kept about it (the rule, the lines that caused it, where it bites), and one click to
// lift it everywhere or on one instance, optionally allowlisting it for a while with a reason.
import type { InstanceOutcome } from '../../gen/InstanceOutcome';
import type { WhyBlocked } from '../../gen/WhyBlocked';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';

export class WhyBlockedController {
  readonly #host: Host;

  query = $state('');
  answer = $state<WhyBlocked | null>(null);
  busy = $state<string | null>(null);
  error = $state<HostError | null>(null);
  /** What the last unblock did on each instance. */
  outcomes = $state<InstanceOutcome[] | null>(null);
  /** The unblock being confirmed: on one instance, or every one (null). */
  unblocking = $state<{ instance: string | null } | null>(null);
  allowHours = $state(0);
  reason = $state('');
  /** A fleet-wide block being confirmed: how long, and why. */
  blockingEverywhere = $state(false);
  blockHours = $state(24);

  constructor(host: Host) {
    this.#host = host;
  }

  start(): () => void {
    return () => {};
  }

  async ask(): Promise<void> {
    const ip = this.query.trim();
    if (!ip) return;
    this.busy = `asking every instance about ${ip}`;
    this.error = null;
    this.outcomes = null;
    try {
      this.answer = await this.#host.whyBlocked(ip);
    } catch (e) {
      this.error = toHostError(e);
      this.answer = null;
    } finally {
      this.busy = null;
    }
  }

  /** Where the address is blocked now. */
  get blockedOn(): string[] {
    return (this.answer?.instances ?? []).filter((i) => i.blocked).map((i) => i.instance);
  }

  /** Block the address asked about on every instance, and keep it in the agents' policy. */
  async blockEverywhere(): Promise<void> {
    const answer = this.answer;
    if (!answer || this.reason.trim() === '') return;
    this.blockingEverywhere = false;
    this.busy = `blocking ${answer.ip} on every instance`;
    this.error = null;
    try {
      this.outcomes = await this.#host.blockEverywhere({
        ip: answer.ip,
        ttl_secs: this.blockHours * 3600,
        reason: this.reason.trim(),
      });
      this.answer = await this.#host.whyBlocked(answer.ip);
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.busy = null;
    }
  }

  async unblock(): Promise<void> {
    const answer = this.answer;
    const target = this.unblocking;
    if (!answer || !target) return;
    this.unblocking = null;
    this.busy = `unblocking ${answer.ip}`;
    this.error = null;
    try {
      this.outcomes = await this.#host.unblockAddress({
        ip: answer.ip,
        instance: target.instance,
        allow_hours: this.allowHours > 0 ? this.allowHours : null,
        reason: this.reason,
      });
      this.answer = await this.#host.whyBlocked(answer.ip);
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.busy = null;
    }
  }
}

const context = controllerContext('why-blocked', (host) => new WhyBlockedController(host));

/** For the Incidents view. */
export const provideWhyBlocked = context.provide;
