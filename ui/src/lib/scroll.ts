// Keeping the operator's place when the page reflows under them: opening a detail beside a
// list narrows the list, its rows wrap and grow, and the row just chosen slides away unless
// the scroll follows it.

/** Something that scrolls vertically. */
export interface Scroller {
  scrollTop: number;
}

/** The nearest ancestor of `el` that scrolls vertically (the shell's `main`), or null. */
export function scrollerOf(el: Element): HTMLElement | null {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const overflow = getComputedStyle(p).overflowY;
    if (overflow === 'auto' || overflow === 'scroll') return p;
  }
  return null;
}

/**
 * Run `change`, which may move `el` on screen, then scroll so that `el` is where it was: the
 * row the operator chose stays under their pointer.
 */
export async function keepInPlace(el: Element, change: () => unknown, box: Scroller | null = scrollerOf(el)): Promise<void> {
  const before = el.getBoundingClientRect().top;
  await change();
  const moved = el.getBoundingClientRect().top - before;
  if (box && moved !== 0) box.scrollTop += moved;
}
