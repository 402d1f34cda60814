// Times are shown in the operator's time zone; the exact UTC instant is on hover.
import { nowSeconds } from './clock';

const local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "3 min ago", "in 12 days": where recency matters. */
export function relative(unixSeconds: number, now: number = nowSeconds()): string {
  const delta = unixSeconds - now;
  const abs = Math.abs(delta);
  const [value, unit] =
    abs < 60
      ? [Math.round(abs), 'second']
      : abs < 3600
        ? [Math.round(abs / 60), 'minute']
        : abs < 86400
          ? [Math.round(abs / 3600), 'hour']
          : [Math.round(abs / 86400), 'day'];
  if (unit === 'second' && value < 5) return 'just now';
  const text = `${value} ${unit}${value === 1 ? '' : 's'}`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

/** The date and time in the operator's zone. */
export function localTime(unixSeconds: number): string {
  return local.format(new Date(unixSeconds * 1000));
}

/** The exact instant in UTC, for a title attribute. */
export function utcTitle(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z') + ' (UTC)';
}
