// Something the operator asked for outside a view (the command palette, the first screen's
// attention list) that the view carries out when it opens. An intent only leads somewhere: it
// opens the view and the dialog or shows the control that acts, and the operator confirms
// there as always. No intent changes anything by itself.
import type { View } from '../gen/View';

export type IntentKind =
  /** Heatmaps: the Alerts tab. */
  | 'alerts'
  /** Heatmaps: the Alerts tab and the confirmation to acknowledge every new alert. */
  | 'acknowledge-alerts'
  /** Rotation: the keys, with the focus on the first one's Rotate… (which previews and asks). */
  | 'rotate-key'
  /** Rotation: the bulk rotation dialog (the operator types the scope to confirm). */
  | 'rotate-due'
  /** Incidents: the latest open incident's step that blocks, or a new incident to block from. */
  | 'block-address'
  /** Incidents: the new incident form. */
  | 'new-incident'
  /** Compliance: the focus on Run checks now. */
  | 'run-checks'
  /** Timeline: the focus on Export CSV, beside the filters it exports. */
  | 'export-timeline'
  /** Timeline: the focus on Sync now, which asks every agent for its new events. */
  | 'sync-now'
  /** Fleet: the focus on Refresh all, which contacts every agent. */
  | 'refresh-agents';

export interface Intent {
  kind: IntentKind;
  /** Rotation: the one key to rotate (a compliance finding's fix), whose dialog opens. */
  target?: { instance: string; name: string };
}

/** The view that carries each intent out. */
export const INTENT_VIEW: Record<IntentKind, View> = {
  alerts: 'heatmaps',
  'acknowledge-alerts': 'heatmaps',
  'rotate-key': 'rotation',
  'rotate-due': 'rotation',
  'block-address': 'incidents',
  'new-incident': 'incidents',
  'run-checks': 'compliance',
  'export-timeline': 'timeline',
  'sync-now': 'timeline',
  'refresh-agents': 'fleet',
};

/** The intent when it is one of `kinds`, else null: what a view watches for. */
export function intentOf<K extends IntentKind>(intent: Intent | null, ...kinds: K[]): K | null {
  return intent && (kinds as IntentKind[]).includes(intent.kind) ? (intent.kind as K) : null;
}
