import type { Theme } from '../gen/Theme';
import type { View } from '../gen/View';
import { VIEWS } from './views';

/** An entry of the command palette. */
export interface PaletteCommand {
  id: string;
  label: string;
  hint?: string;
  run: PaletteAction;
}

export type PaletteAction =
  | { kind: 'go'; view: View }
  | { kind: 'theme'; theme: Theme }
  | { kind: 'refresh' };

export const PALETTE_COMMANDS: readonly PaletteCommand[] = [
  ...VIEWS.map((v) => ({
    id: `go-${v.id}`,
    label: `Go to ${v.label}`,
    hint: `Ctrl ${v.key}`,
    run: { kind: 'go', view: v.id } as const,
  })),
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
