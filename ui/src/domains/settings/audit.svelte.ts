// The audit log: the newest actions, and verifying the HMAC chain on request.
import type { AuditEntry } from '../../gen/AuditEntry';
import type { AuditVerdict } from '../../gen/AuditVerdict';
import { toHostError, type Host, type HostError } from '../../lib/host';

/** How many of the newest rows are listed. */
const SHOWN = 50;

export class AuditController {
  readonly #host: Host;

  entries = $state<AuditEntry[]>([]);
  verdict = $state<AuditVerdict | null>(null);
  error = $state<HostError | null>(null);
  verifying = $state(false);
  rotating = $state(false);

  constructor(host: Host) {
    this.#host = host;
  }

  async load(): Promise<void> {
    try {
      this.entries = await this.#host.auditLog(SHOWN);
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async verify(): Promise<void> {
    this.verifying = true;
    try {
      this.verdict = await this.#host.verifyAudit();
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.verifying = false;
    }
  }

  /** Start a new key generation, then verify again so the verdict names it. */
  async rotateKey(): Promise<void> {
    this.rotating = true;
    try {
      await this.#host.rotateAuditKey();
      this.error = null;
      await this.load();
      await this.verify();
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.rotating = false;
    }
  }
}
