import type { View } from '../gen/View';

export interface ViewInfo {
  id: View;
  label: string;
  /** The question the view answers, shown under its title. */
  question: string;
  /** Digit for Ctrl/Cmd+digit. */
  key: string;
}

export const VIEWS: readonly ViewInfo[] = [
  { id: 'fleet', label: 'Fleet', question: 'Is every instance reachable and healthy?', key: '1' },
  { id: 'timeline', label: 'Timeline', question: 'What happened?', key: '2' },
  { id: 'heatmaps', label: 'Heatmaps', question: 'Who is hammering us, and when?', key: '3' },
  { id: 'rotation', label: 'Rotation', question: 'What expires or is due next?', key: '4' },
  { id: 'compliance', label: 'Compliance', question: 'Are we following our own rules?', key: '5' },
  { id: 'incidents', label: 'Incidents', question: 'What do I do now?', key: '6' },
  { id: 'settings', label: 'Settings', question: 'How Gatehouse itself is set up.', key: '7' },
];

export function viewById(id: View): ViewInfo {
  const found = VIEWS.find((v) => v.id === id);
  if (!found) throw new Error(`unknown view ${id}`);
  return found;
}

/** The view a Ctrl/Cmd+key shortcut selects, if any. */
export function viewForShortcut(event: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey'>): View | null {
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return null;
  return VIEWS.find((v) => v.key === event.key)?.id ?? null;
}

/** The next view up or down the list, wrapping around. */
export function neighbour(id: View, step: 1 | -1): View {
  const index = VIEWS.findIndex((v) => v.id === id);
  const next = (index + step + VIEWS.length) % VIEWS.length;
  return VIEWS[next]!.id;
}
