// How views and their parts reach the host: App puts the one `Host` in context; each view makes
// its domain's controller from it when it mounts and shares that controller with its parts.
// Controllers are the only code that calls the host (lint-enforced), so nothing else needs it.
import { getContext, onMount, setContext } from 'svelte';

import type { Host } from './host';

const HOST = Symbol('host');

/** A context holding `host`, for `mount` and tests' `render`. */
export function hostContext(host: Host): Map<symbol, Host> {
  return new Map([[HOST, host]]);
}

/** Give every component below the caller the host (App does, once). */
export function setHost(host: Host): void {
  setContext(HOST, host);
}

/** The host, for controllers' `provide` functions only (lint-enforced). */
export function getHost(): Host {
  const host = getContext<Host | undefined>(HOST);
  if (!host) throw new Error('No host in context: App provides it, and tests pass hostContext(host) to render.');
  return host;
}

/** A controller's lifetime: `start` begins its polling and returns what stops it. */
export interface Lifecycle {
  start(): () => void;
}

/**
 * One domain's controller in context. `provide` (called by a view while it initialises) makes
 * the controller from the host, shares it with the view's parts and starts it when the view
 * mounts, stopping it when the view goes; `use` (called by the parts) returns it.
 */
export function controllerContext<T extends Lifecycle, Options = void>(
  name: string,
  make: (host: Host, options: Options) => T,
) {
  const key = Symbol(name);
  return {
    provide(options: Options): T {
      const controller = setContext(key, make(getHost(), options));
      onMount(() => controller.start());
      return controller;
    },
    use(): T {
      const controller = getContext<T | undefined>(key);
      if (!controller) throw new Error(`No ${name} controller in context: its view provides it.`);
      return controller;
    },
  };
}
