import type { ItemView } from '../../gen/ItemView';

/** One instance's checklist as the list shows it: what needs attention first, then the
 * checklist's sections, and last the manual items nobody has taken on yet, counted. */
export interface ItemGroups {
  /** Failing checks, re-opened items and overdue ones, in checklist order. */
  attention: ItemView[];
  /** Everything else by section, in checklist order; sections left empty are dropped. */
  sections: [string, ItemView[]][];
  /** Manual items never signed off, with no owner and no due date: work to set up. */
  toSetUp: ItemView[];
}

function needsAttention(item: ItemView): boolean {
  return item.state === 'fail' || item.reopened || item.overdue;
}

function neverSetUp(item: ItemView): boolean {
  return (
    !item.automated &&
    item.state === 'due' &&
    item.signed_off_at === null &&
    item.owner === null &&
    item.due_at === null &&
    item.waiver === null
  );
}

export function groupItems(items: ItemView[]): ItemGroups {
  const attention = items.filter(needsAttention);
  const toSetUp = items.filter((i) => !needsAttention(i) && neverSetUp(i));
  const rest = items.filter((i) => !needsAttention(i) && !neverSetUp(i));
  const sections = [...new Set(rest.map((i) => i.section))].map(
    (s): [string, ItemView[]] => [s, rest.filter((i) => i.section === s)],
  );
  return { attention, sections, toSetUp };
}
