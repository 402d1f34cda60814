import type { Status } from '../gen/Status';

/** Status is never colour alone: each has a word, and an icon drawn by StatusBadge. */
export const STATUS_WORD: Record<Status, string> = {
  ok: 'OK',
  warning: 'Warning',
  failing: 'Failing',
  unknown: 'Unknown',
};
