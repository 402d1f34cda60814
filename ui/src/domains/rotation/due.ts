// When a credential falls due, counted the way the core counts it for its status line
// (`crates/core/src/rotation.rs`: `status_of` for keys and the fleet CA, `renewal_status` for
// certificates): whole days rounded down from (due − now), at the moment the inventory was
// checked. So the Due column and the status never disagree by a day.
import type { Credential } from '../../gen/Credential';

const DAY = 86_400;

/** Certificates the console renews itself; their due date is the renewal. */
export function renewsItself(c: Credential): boolean {
  return c.kind === 'agent_certificate' || c.kind === 'client_certificate';
}

/** Whole days from `now` to `due`, rounded down (negative once past). */
export function wholeDays(due: number, now: number): number {
  return Math.floor((due - now) / DAY);
}

function days(n: number): string {
  return `${n} day${n === 1 ? '' : 's'}`;
}

/** The Due column: "in 89 days", "overdue by 3 days", as the status line counts them. */
export function dueWords(c: Credential, now: number): string {
  const due = c.due_at;
  if (due === null) return '–';
  const left = wholeDays(due, now);
  if (renewsItself(c)) {
    if (due + DAY < now) return `renewal overdue by ${days(Math.floor((now - due) / DAY))}`;
    if (due <= now) return 'at the next check';
  } else if (due <= now) {
    return `overdue by ${days(-left)}`;
  }
  // The core says "in 0 days" for less than a day: the same count, in plainer words.
  return left === 0 ? 'within a day' : `in ${days(left)}`;
}
