import type { ItemFilter } from '../../gen/ItemFilter';
import type { ItemState } from '../../gen/ItemState';
import type { Status } from '../../gen/Status';

/** Every state has a word and an icon (StatusBadge), never colour alone. */
export const STATE: Record<ItemState, [Status, string]> = {
  pass: ['ok', 'Pass'],
  done: ['ok', 'Done'],
  fail: ['failing', 'Fail'],
  due: ['warning', 'Due'],
  unknown: ['unknown', 'Unknown'],
  waived: ['unknown', 'Waived'],
};

export const FILTERS: [ItemFilter | null, string][] = [
  [null, 'All items'],
  ['failing', 'Failing'],
  ['due', 'Due'],
  ['waived', 'Waived'],
];
