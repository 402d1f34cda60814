// How an attention line of the first screen reads. The core sends a title and one detail; for
// alerts the detail is the latest alert's, so a line about many alerts says how many, that
// the detail is only the latest, and leads to the list of them all.
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

/** The count in the core's "22 new alerts" title, or null. */
export function alertCount(item: Attention): number | null {
  if (item.view !== 'heatmaps') return null;
  const many = /^(\d+) new alerts?$/.exec(item.title.trim());
  if (many) return Number(many[1]);
  return /^New alert\b/.test(item.title) ? 1 : null;
}

export function attentionLine(item: Attention): AttentionLine {
  const count = alertCount(item);
  if (count === null) return { title: item.title, detail: item.detail, link: viewById(item.view).label, intent: null };
  if (count === 1) return { title: item.title, detail: item.detail, link: 'Open the alert', intent: 'alerts' };
  return {
    title: `${count} new alerts, not yet acknowledged`,
    detail: `Latest: ${item.detail}`,
    link: `See all ${count} alerts`,
    intent: 'alerts',
  };
}
