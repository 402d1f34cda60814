// Moving the focus to a control that may not be drawn yet (its data is still on the way), for
// intents that lead the operator to the button that acts.
import { tick } from 'svelte';

/** Focus the first element matching `selector` once it is in the page; false if it never came
 * within `waitMs`. */
export async function focusWhenShown(selector: string, waitMs = 3000): Promise<boolean> {
  const until = performance.now() + waitMs;
  for (;;) {
    await tick();
    const el = document.querySelector<HTMLElement>(selector);
    if (el) {
      el.focus();
      return document.activeElement === el;
    }
    if (performance.now() > until) return false;
    await new Promise((done) => setTimeout(done, 50));
  }
}
