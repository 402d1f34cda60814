import type { Theme } from '../gen/Theme';

/** Apply the operator's theme choice; `system` leaves it to the OS (prefers-color-scheme). */
export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): void {
  if (theme === 'system') {
    delete root.dataset.theme;
  } else {
    root.dataset.theme = theme;
  }
}
