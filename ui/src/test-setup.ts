// jsdom lacks ResizeObserver, which Svelte's bind:clientHeight uses. Layout does not exist in
// jsdom anyway, so observing nothing is faithful: sizes stay at their initial values.
class ResizeObserverStandIn {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}

globalThis.ResizeObserver ??= ResizeObserverStandIn as unknown as typeof ResizeObserver;
