// The rotation calendar's arithmetic, in the operator's local time.
import type { Credential } from '../gen/Credential';

/** `2026-11-23` for a Unix time, in local time. */
export function dayKey(unix: number): string {
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Credentials by the local day they are due; overdue ones are shown on today. */
export function groupByDay(list: Credential[], now: number): Map<string, Credential[]> {
  const map = new Map<string, Credential[]>();
  for (const c of list) {
    if (c.due_at === null) continue;
    const key = dayKey(Math.max(c.due_at, now));
    map.set(key, [...(map.get(key) ?? []), c]);
  }
  return map;
}

export interface Month {
  title: string;
  /** Leading nulls pad the first week, which starts on Monday. */
  days: ({ key: string; day: number } | null)[];
}

/** The fewest and most months the calendar shows. */
export const MIN_MONTHS = 3;
export const MAX_MONTHS = 12;

/** How many months, from `now`'s, reach the latest of `list`'s due dates within a year (at
 * least three): a key due in four months is on the calendar, a CA due in ten years is not. */
export function monthsToShow(list: readonly Credential[], now: number): number {
  const start = new Date(now * 1000);
  let months = MIN_MONTHS;
  for (const c of list) {
    if (c.due_at === null || c.due_at <= now) continue;
    const due = new Date(c.due_at * 1000);
    const span = (due.getFullYear() - start.getFullYear()) * 12 + due.getMonth() - start.getMonth() + 1;
    if (span <= MAX_MONTHS) months = Math.max(months, span);
  }
  return months;
}

/** Unix seconds at the end of the last day of the month `count - 1` months after `now`'s. */
export function calendarEnd(now: number, count: number): number {
  const start = new Date(now * 1000);
  return new Date(start.getFullYear(), start.getMonth() + count, 1).getTime() / 1000;
}

/** The month of `at` and the next `count - 1`. */
export function calendar(at: number, count = MIN_MONTHS): Month[] {
  const first = new Date(at * 1000);
  return Array.from({ length: count }, (_, offset) => {
    // Noon: clear of DST changes, which happen at night.
    const month = new Date(first.getFullYear(), first.getMonth() + offset, 1, 12);
    const title = month.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
    const lead = (month.getDay() + 6) % 7;
    const days: Month['days'] = Array.from({ length: lead }, () => null);
    const cursor = new Date(month);
    while (cursor.getMonth() === month.getMonth()) {
      days.push({ key: dayKey(cursor.getTime() / 1000), day: cursor.getDate() });
      cursor.setDate(cursor.getDate() + 1);
    }
    return { title, days };
  });
}
