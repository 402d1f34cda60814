// When the console last heard from an instance. The health check runs every minute, but events
// are pulled every second: when the pull is more recent, it is the better answer to "is this
// instance talking to us?".
import type { InstanceView } from '../../gen/InstanceView';
import type { SyncState } from '../../gen/SyncState';

export interface Contact {
  /** "synced" (the last event pull) or "last contact" (the last health check). */
  words: 'synced' | 'last contact';
  /** Unix seconds. */
  at: number;
}

/** The more recent of the instance's last contact and its last event pull, or null if neither. */
export function lastHeard(instance: InstanceView, sync: readonly SyncState[]): Contact | null {
  const pulled = sync.find((s) => s.instance === instance.name)?.last_sync ?? null;
  // The sync state is stamped in microseconds, the instance in seconds.
  const synced = pulled === null ? null : pulled / 1e6;
  if (synced !== null && (instance.last_contact === null || synced > instance.last_contact)) return { words: 'synced', at: synced };
  if (instance.last_contact !== null) return { words: 'last contact', at: instance.last_contact };
  return null;
}
