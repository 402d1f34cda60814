// The Settings view's controller: the charts' time zone, the keychain's state, where the data
// lives, the theme choice (applied by the shell), detection rules and the audit log.
import type { AppInfo } from '../../gen/AppInfo';
import type { KeychainStatus } from '../../gen/KeychainStatus';
import type { Settings } from '../../gen/Settings';
import type { Theme } from '../../gen/Theme';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import { AuditController } from './audit.svelte';
import { DetectionController } from './detection.svelte';

export interface SettingsOptions {
  /** The shell applies and stores the theme; it may fail (the notice says why). */
  onthemechange: (theme: Theme) => Promise<void>;
}

export class SettingsController {
  readonly #host: Host;
  readonly #options: SettingsOptions;

  info = $state<AppInfo | null>(null);
  keychain = $state<KeychainStatus | null>(null);
  checking = $state(false);
  /** The zone as typed; empty follows the system. */
  zone = $state('');
  effectiveZone = $state('');
  zoneNote = $state<string | null>(null);
  error = $state<HostError | null>(null);

  readonly detection: DetectionController;
  readonly audit: AuditController;

  constructor(host: Host, options: SettingsOptions) {
    this.#host = host;
    this.#options = options;
    this.detection = new DetectionController(host);
    this.audit = new AuditController(host);
  }

  start(): () => void {
    void this.load();
    this.detection.load();
    void this.audit.load();
    return () => {};
  }

  async load(): Promise<void> {
    try {
      const [info, keychain, settings] = await Promise.all([this.#host.appInfo(), this.#host.keychainStatus(), this.#host.settings()]);
      this.info = info;
      this.keychain = keychain;
      this.#showZone(settings);
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  async recheck(): Promise<void> {
    this.checking = true;
    try {
      this.keychain = await this.#host.keychainStatus();
    } catch (e) {
      this.error = toHostError(e);
    } finally {
      this.checking = false;
    }
  }

  async chooseTheme(next: Theme): Promise<void> {
    try {
      await this.#options.onthemechange(next);
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Use a zone (IANA name), or follow the system's with null. */
  async saveZone(next: string | null): Promise<void> {
    this.zoneNote = null;
    try {
      const settings = await this.#host.setTimeZone(next);
      this.#showZone(settings);
      this.zoneNote = `Charts use ${this.effectiveZone}${settings.time_zone ? '' : " (the system's)"}.`;
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  #showZone(settings: Settings): void {
    this.zone = settings.time_zone ?? '';
    this.effectiveZone = settings.effective_time_zone;
  }
}

const context = controllerContext('settings', (host, options: SettingsOptions) => new SettingsController(host, options));

/** For the Settings view: its controller, started and stopped with it. */
export const provideSettings = context.provide;
/** For the Settings view's parts. */
export const useSettings = context.use;
