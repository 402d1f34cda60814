// The shell's controller, alive as long as the window: the overview (what needs attention, the
// keychain), the theme, the first-paint report, and clicks on alerts' desktop notifications.
import type { Overview } from '../../gen/Overview';
import type { Theme } from '../../gen/Theme';
import { controllerContext } from '../../lib/context';
import { toHostError, type Host, type HostError } from '../../lib/host';
import { applyTheme } from '../../lib/theme';

export interface ShellOptions {
  /** A notification was clicked: show its alert (the shell waits for that before the next). */
  onalert: (id: number) => Promise<void>;
}

export class ShellController {
  readonly #host: Host;
  readonly #options: ShellOptions;
  #stopped = false;

  overview = $state<Overview | null>(null);
  error = $state<HostError | null>(null);
  theme = $state<Theme>('system');

  /** The keychain's problem as an error that names the fix, while it has one. */
  readonly keychainError = $derived.by(() => {
    const keychain = this.overview?.keychain;
    if (!keychain || keychain.state === 'available') return null;
    return toHostError({
      code: keychain.state === 'locked' ? 'keychain_locked' : 'keychain_unavailable',
      message: keychain.message,
    });
  });

  constructor(host: Host, options: ShellOptions) {
    this.#host = host;
    this.#options = options;
  }

  start(): () => void {
    this.#stopped = false;
    void this.refresh();
    void this.#followNotifications();
    this.#host
      .settings()
      .then((settings) => {
        this.theme = settings.theme;
        applyTheme(this.theme);
      })
      .catch((e) => (this.error = toHostError(e)));
    // Report the first frame actually on screen: two frames after the shell is mounted.
    let frame = requestAnimationFrame(() => {
      frame = requestAnimationFrame(() => {
        this.#host.firstPaint().catch((e) => console.error('first paint report failed', e));
      });
    });
    return () => {
      this.#stopped = true;
      cancelAnimationFrame(frame);
    };
  }

  async refresh(): Promise<void> {
    try {
      this.overview = await this.#host.overview();
      this.error = null;
    } catch (e) {
      this.error = toHostError(e);
    }
  }

  /** Store and apply a theme; fails with the reason (Settings shows it). */
  async setTheme(next: Theme): Promise<void> {
    const settings = await this.#host.setTheme(next);
    this.theme = settings.theme;
    applyTheme(this.theme);
  }

  /** A theme from the command palette: a failure shows where the overview's would. */
  chooseTheme(next: Theme): void {
    this.setTheme(next).catch((e) => (this.error = toHostError(e)));
  }

  /** A clicked desktop notification opens its alert; one call waits at a time. */
  async #followNotifications(): Promise<void> {
    while (!this.#stopped) {
      try {
        const id = await this.#host.nextOpenedAlert();
        if (this.#stopped) return;
        await this.#options.onalert(id);
      } catch {
        return;
      }
    }
  }
}

const context = controllerContext('shell', (host, options: ShellOptions) => new ShellController(host, options));

/** For App: the shell's controller, started and stopped with the window. */
export const provideShell = context.provide;
