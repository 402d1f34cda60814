import type { Theme } from '../gen/Theme';
import type { View } from '../gen/View';
import type { IntentKind } from './intents';
import { VIEWS } from './views';

/** An entry of the command palette. */
export interface PaletteCommand {
  id: string;
  label: string;
  /** A keyboard shortcut. */
  hint?: string;
  /** Where it leads and what comes next, in words. */
  detail?: string;
  run: PaletteAction;
}

export type PaletteAction =
  | { kind: 'go'; view: View }
  | { kind: 'theme'; theme: Theme }
  | { kind: 'refresh' }
  /** Open the view that does it, and its dialog or the button that acts: never act at once. */
  | { kind: 'intent'; intent: IntentKind };

/** The console's actions, each leading into its usual confirmation ("…": a dialog or a choice
 * comes first). */
const ACTIONS: readonly [IntentKind, string, string][] = [
  ['rotate-key', 'Rotate a key…', 'Rotation: choose the key, then confirm'],
  ['rotate-due', 'Rotate every due key…', 'Rotation: type the count to confirm'],
  ['block-address', 'Block an address…', 'Incidents: confirm in the block dialog'],
  ['run-checks', 'Run the compliance checks…', 'Compliance: press Run checks now'],
  ['new-incident', 'Open an incident…', 'Incidents: fill in the form'],
  ['export-timeline', 'Export the timeline as CSV…', 'Timeline: check the filters, press Export CSV'],
  ['sync-now', 'Sync events from every agent now…', 'Timeline: press Sync now'],
  ['refresh-agents', 'Refresh every agent…', 'Fleet: press Refresh all'],
  ['acknowledge-alerts', 'Acknowledge every new alert…', 'Heatmaps: confirm how many'],
  ['alerts', 'Show the alerts', 'Heatmaps, Alerts tab'],
];

export const PALETTE_COMMANDS: readonly PaletteCommand[] = [
  ...VIEWS.map((v) => ({
    id: `go-${v.id}`,
    label: `Go to ${v.label}`,
    hint: `Ctrl ${v.key}`,
    run: { kind: 'go', view: v.id } as const,
  })),
  ...ACTIONS.map(([intent, label, detail]) => ({ id: intent, label, detail, run: { kind: 'intent', intent } as const })),
  { id: 'refresh', label: 'Refresh the overview', run: { kind: 'refresh' } },
  { id: 'theme-system', label: 'Theme: follow the system', run: { kind: 'theme', theme: 'system' } },
  { id: 'theme-light', label: 'Theme: light', run: { kind: 'theme', theme: 'light' } },
  { id: 'theme-dark', label: 'Theme: dark', run: { kind: 'theme', theme: 'dark' } },
];

/** Commands whose label contains every word of the query, in the original order. */
export function filterCommands(query: string, commands: readonly PaletteCommand[] = PALETTE_COMMANDS): PaletteCommand[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return commands.filter((c) => words.every((w) => c.label.toLowerCase().includes(w)));
}
