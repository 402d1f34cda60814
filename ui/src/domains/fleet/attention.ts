// How an attention line of the first screen reads. The core sends a title and one detail; for
// many alerts the detail is the latest alert's (the core says so), and the line leads to the
// list of them all.
import type { Attention } from '../../gen/Attention';
import type { IntentKind } from '../../lib/intents';
import { viewById } from '../../lib/views';

export interface AttentionLine {
  title: string;
  detail: string;
  /** What the link says. */
  link: string;
  /** Where it leads: an intent (the Alerts tab), else the item's view. */
  intent: IntentKind | null;
}

/** The count in the core's "22 new alerts, not yet acknowledged" title, or null. */
export function alertCount(item: Attention): number | null {
  if (item.view !== 'heatmaps') return null;
  const many = /^(\d+) new alerts?\b/.exec(item.title.trim());
  if (many) return Number(many[1]);
  return /^New alert\b/.test(item.title) ? 1 : null;
}

export function attentionLine(item: Attention): AttentionLine {
  const count = alertCount(item);
  if (count === null) return { title: item.title, detail: item.detail, link: viewById(item.view).label, intent: null };
  if (count === 1) return { title: item.title, detail: item.detail, link: 'Open the alert', intent: 'alerts' };
  return { title: item.title, detail: item.detail, link: `See all ${count} alerts`, intent: 'alerts' };
}
