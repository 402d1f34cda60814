import type { EventFilter } from '../gen/EventFilter';

/** A timeline filter chosen elsewhere (a heatmap cell, an offender, an alert), with words
 * saying what it shows. */
export interface TimelinePreset {
  label: string;
  filter: EventFilter;
}

/** An empty filter: every field narrows, so this shows everything. */
export function emptyFilter(): EventFilter {
  return {
    from_us: null,
    to_us: null,
    instance: null,
    service: null,
    kind: null,
    outcome: null,
    ip: null,
    key_prefix: null,
    path: null,
    text: null,
    source: null,
    hours: null,
    attempts: false,
  };
}

/** Every event from one address in a time range. */
export function addressPreset(ip: string, fromUs: number | null, toUs: number | null, label: string): TimelinePreset {
  return { label, filter: { ...emptyFilter(), ip, from_us: fromUs, to_us: toUs } };
}
