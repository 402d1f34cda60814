// How events read: kinds and outcomes in words, times to the millisecond, line flags explained.
import type { TimelineEvent } from '../../gen/TimelineEvent';
import { nowDate } from '../../lib/clock';

export const KINDS = ['auth', 'request', 'rate_limit', 'service', 'log', 'unparsed', 'gap', 'console'];
export const OUTCOMES = ['failure', 'success', 'error', 'info'];

const FLAGS: [number, string][] = [
  [1, 'not valid UTF-8 (shown with replacement characters)'],
  [2, 'longer than 64 KiB, cut'],
  [4, 'time more than 5 minutes in the future'],
  [8, 'no time in the line: read time used'],
  [16, 'client address reported by the service (spoofable X-Forwarded-For)'],
  [32, "Gatehouse's own request (the agent's check or probe): not counted as a failed sign-in"],
  [64, 'client address field unreadable (kept as evidence, never offered for blocking)'],
];

const CLOCK: Intl.DateTimeFormatOptions = {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  fractionalSecondDigits: 3,
  hourCycle: 'h23',
};
const clock = new Intl.DateTimeFormat(undefined, CLOCK);
const clockWithYear = new Intl.DateTimeFormat(undefined, { ...CLOCK, year: 'numeric' });

/** `rate_limit` reads as "rate limit". */
export function words(name: string): string {
  return name.replace('_', ' ');
}

export function flagWords(flags: number): string[] {
  return FLAGS.filter(([bit]) => flags & bit).map(([, word]) => word);
}

/** Whether an event falls in another year than `now`'s (in the operator's zone). */
export function otherYear(e: TimelineEvent, now: Date = nowDate()): boolean {
  return new Date(e.time_us / 1000).getFullYear() !== now.getFullYear();
}

/** To the millisecond; with the year when it is not the current one (a line stamped 2099
 * must not read as this November). */
export function time(e: TimelineEvent, now: Date = nowDate()): string {
  return (otherYear(e, now) ? clockWithYear : clock).format(new Date(e.time_us / 1000));
}

/** An event's identity, stable across pages. */
export function eventKey(e: TimelineEvent): string {
  return `${e.instance}:${e.seq}:${e.time_us}`;
}
