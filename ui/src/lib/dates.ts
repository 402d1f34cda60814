// Dates and times the operator types. One unambiguous written form everywhere, ISO order
// (`2026-12-06`, `2026-12-06 14:05`), checked as typed; what was understood is echoed in the
// app's own words (`Sun, Dec 6, 2026`), so nobody has to guess whether 06/12 is June or
// December. Times are in the operator's time zone, the one the timeline shows.

const DAY_MS = 86_400_000;

/** A calendar day. */
export interface Day {
  year: number;
  /** 1 to 12. */
  month: number;
  day: number;
}

/** The outcome of reading a field: empty, a value, or why it is not one. */
export type Parsed<T> = { kind: 'empty' } | { kind: 'ok'; value: T } | { kind: 'invalid'; reason: string };

const DAY_FORM = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
const TIME_FORM = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function validDay(year: number, month: number, day: number): string | null {
  if (year < 1970) return 'that is before 1970, when Unix time starts';
  if (month < 1 || month > 12) return `there is no month ${month}`;
  if (day < 1 || day > daysIn(year, month)) return `${year}-${String(month).padStart(2, '0')} has no day ${day}`;
  return null;
}

/** A day as typed: `2026-12-06` (year, month, day). */
export function parseDay(text: string): Parsed<Day> {
  const trimmed = text.trim();
  if (!trimmed) return { kind: 'empty' };
  const m = DAY_FORM.exec(trimmed);
  if (!m) return { kind: 'invalid', reason: 'write it as year-month-day, such as 2026-12-06' };
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const wrong = validDay(year, month, day);
  return wrong ? { kind: 'invalid', reason: wrong } : { kind: 'ok', value: { year, month, day } };
}

/** `2026-12-06`. */
export function dayText(d: Day): string {
  return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** The day as Unix seconds at its start in UTC (how the core stores due dates and expiries). */
export function dayStartUtc(d: Day): number {
  return Date.UTC(d.year, d.month - 1, d.day) / 1000;
}

/** The UTC day of Unix seconds. */
export function utcDay(unix: number): Day {
  const d = new Date(unix * 1000);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** The day `days` after `d` (before, when negative). */
export function addDays(d: Day, days: number): Day {
  return utcDay(dayStartUtc(d) + (days * DAY_MS) / 1000);
}

const dayWords = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });

/** `Sun, Dec 6, 2026`: the day in the app's words. */
export function dayInWords(d: Day): string {
  return dayWords.format(new Date(dayStartUtc(d) * 1000));
}

/** A local date and time as typed: `2026-11-23 14:05`, with seconds if wanted; a day alone
 * means its start. Returns milliseconds since the epoch. */
export function parseLocalTime(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (!trimmed) return { kind: 'empty' };
  const m = TIME_FORM.exec(trimmed);
  if (!m) return { kind: 'invalid', reason: 'write it as year-month-day hour:minute, such as 2026-11-23 14:05' };
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const wrong = validDay(year, month, day);
  if (wrong) return { kind: 'invalid', reason: wrong };
  if (hour > 23 || minute > 59 || second > 59) return { kind: 'invalid', reason: `${m[4]}:${m[5]}${m[6] ? `:${m[6]}` : ''} is not a time of day` };
  const at = new Date(year, month - 1, day, hour, minute, second);
  // A time the clocks skip (the hour they go forward) comes back moved: say so, don't guess.
  if (at.getHours() !== hour || at.getMinutes() !== minute) {
    return { kind: 'invalid', reason: `${String(hour).padStart(2, '0')}:${m[5]} does not exist that day here: the clocks go forward` };
  }
  return { kind: 'ok', value: at.getTime() };
}

const timeWords = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** `Mon, Nov 23, 2026, 14:05:00`: a local time in the app's words. */
export function timeInWords(ms: number): string {
  return timeWords.format(new Date(ms));
}

/** `2026-11-23 14:05`: a local time in the form the fields take. */
export function localTimeText(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The operator's time zone (the window's), by its IANA name. */
export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}
