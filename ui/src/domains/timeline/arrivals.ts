import type { TimelineEvent } from '../../gen/TimelineEvent';
import { eventKey } from './format';

/** What a fresh first page brings that the list shown lacks: the events newer than its top,
 * and whether older ones arrived too (an agent backfilling a log read from its start). */
export function arrivals(shown: TimelineEvent[], page: TimelineEvent[]): { newer: TimelineEvent[]; older: boolean } {
  const known = new Set(shown.map(eventKey));
  const fresh = page.filter((e) => !known.has(eventKey(e)));
  const top = shown[0];
  const newer = top ? fresh.filter((e) => e.time_us > top.time_us || (e.time_us === top.time_us && e.seq > top.seq)) : fresh;
  return { newer, older: fresh.length > newer.length };
}
