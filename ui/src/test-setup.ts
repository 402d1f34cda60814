// jsdom lacks ResizeObserver, which Svelte's bind:clientHeight uses. Layout does not exist in
// jsdom anyway, so observing nothing is faithful: sizes stay at their initial values.
class ResizeObserverStandIn {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}

globalThis.ResizeObserver ??= ResizeObserverStandIn as unknown as typeof ResizeObserver;

// Every test runs at the same instant (Monday 23 November 2026, noon local time), whatever the
// day the suite runs: expected values never come from the wall clock. Time still moves on
// from there, so polling behaves.
import { pinnedClock, setClock } from './lib/clock';

setClock(pinnedClock(new Date(2026, 10, 23, 12).getTime()));
