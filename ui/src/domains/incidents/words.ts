import type { ActionKind } from '../../gen/ActionKind';
import type { IncidentStatus } from '../../gen/IncidentStatus';
import type { Status } from '../../gen/Status';

export const STATUS: Record<IncidentStatus, [Status, string]> = {
  open: ['failing', 'Open'],
  contained: ['warning', 'Contained'],
  resolved: ['ok', 'Resolved'],
  closed: ['unknown', 'Closed'],
};

/** A playbook action's button; "…" where a confirmation or a choice comes first. */
export const ACTION_WORD: Record<ActionKind, string> = {
  show_events: 'Show the events',
  show_writes: 'Show writes and deletes',
  block_ip: 'Block an address…',
  unblock_ip: 'Unblock an address…',
  rotate_key: 'Rotate a key…',
  restart_service: 'Restart the service…',
  snapshot_database: 'Snapshot the database',
  restore_database: 'Restore a snapshot…',
  evidence_bundle: 'Collect evidence',
  report: 'Export the report',
};

/** How long a block lasts, in seconds: the kernel lifts it then. */
export const TTLS: [number, string][] = [
  [900, '15 minutes'],
  [3600, '1 hour'],
  [86400, '1 day'],
  [604800, '7 days'],
];
