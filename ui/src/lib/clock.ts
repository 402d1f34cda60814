// The one place the UI reads the wall clock (lint-enforced: `Date.now()` and `new Date()` are
// refused everywhere else). Tests pin it, so what they expect never depends on the day they
// run; the app uses the system clock.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

let current: Clock = systemClock;

/** Replace the clock (tests). Returns the one it replaced. */
export function setClock(clock: Clock): Clock {
  const before = current;
  current = clock;
  return before;
}

/**
 * A clock that starts at `startMs` and moves on with real elapsed time (monotonic), so polling
 * and "seconds ago" still behave while the date is fixed.
 */
export function pinnedClock(startMs: number): Clock {
  const origin = performance.now();
  return { nowMs: () => startMs + Math.floor(performance.now() - origin) };
}

export function nowMs(): number {
  return current.nowMs();
}

/** Unix seconds, with the fraction. */
export function nowSeconds(): number {
  return current.nowMs() / 1000;
}

/** Unix microseconds, as the core stamps events. */
export function nowMicros(): number {
  return current.nowMs() * 1000;
}

/** The current instant as a `Date`. */
export function nowDate(): Date {
  return new Date(current.nowMs());
}
