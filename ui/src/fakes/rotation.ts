// Credentials: the inventory, rotation periods, single and bulk rotation, history.
import type { Credential } from '../gen/Credential';
import { nowSeconds } from '../lib/clock';
import { HostError, type Host } from '../lib/host';
import type { FakeHost } from './index';

export interface RotationFake {
  credentialList: Credential[];
  keyDays: Record<string, number>;
  /** When set, rotations roll back with this reason. */
  rotationFails: string | null;
}

type RotationCalls = Pick<
  Host,
  'credentials' | 'setKeyRotationDays' | 'rotationPreview' | 'rotateKey' | 'copyRotatedKey' | 'rotateMany' | 'bulkProgress' | 'rotationHistory'
>;

/** A credential as the core would describe it; due `dueInDays` after `now` (Unix seconds). */
export function sampleCredential(
  id: string,
  dueInDays: number,
  overrides: Partial<Credential> = {},
  now: number = Math.floor(nowSeconds()),
): Credential {
  return {
    id,
    instance: 'sekha-prod',
    kind: 'api_key',
    name: 'mcp_api_key',
    location: '/srv/sekha/config.toml',
    fingerprint: '9f86d081884c7d65',
    set_at: now - (90 - dueInDays) * 86400,
    last_rotation: null,
    expires_at: null,
    due_at: now + dueInDays * 86400,
    policy: 'every 90 days (the guides: quarterly)',
    status: dueInDays < 0 ? 'failing' : dueInDays < 30 ? 'warning' : 'ok',
    status_text: dueInDays < 0 ? `overdue by ${-dueInDays} days` : `due in ${dueInDays} days`,
    weak: false,
    ...overrides,
  };
}

export function rotationFake(host: FakeHost, now: number): RotationFake & RotationCalls {
  return {
    credentialList: [],
    keyDays: {},
    rotationFails: null,
    async credentials() {
      host.calls.push('credentials');
      return { credentials: host.credentialList, problems: [], key_days: host.keyDays, checked_at: now };
    },
    async setKeyRotationDays(instance, days) {
      host.calls.push(`setKeyRotationDays:${instance}:${days}`);
      if (days !== null && (days < 1 || days > 730)) throw new HostError('invalid_input', `Invalid days: a rotation period must be 1 to 730 days, not ${days}`);
      if (days === null) delete host.keyDays[instance];
      else host.keyDays[instance] = days;
    },
    async rotationPreview(instance, name) {
      host.calls.push(`rotationPreview:${instance}:${name}`);
      return {
        instance,
        name,
        file: '/srv/sekha/config.toml',
        fingerprint: '9f86d081884c7d65',
        impact: `${name} is the service's one key: it is replaced and the service restarts, cutting over at once.`,
      };
    },
    async rotateKey(instance, name) {
      host.calls.push(`rotateKey:${instance}:${name}`);
      const failed = host.rotationFails;
      return {
        instance,
        name,
        committed: failed === null,
        rolled_back: failed !== null,
        old_key_works: failed === null ? null : true,
        steps: failed === null
          ? ['kept a backup', 'wrote the new key (mode 0600)', 'restarted the service', 'verified: the new key is accepted, the old key is refused']
          : ['kept a backup', 'wrote the new key (mode 0600)', 'put the previous config back', 'verified: the old key works again'],
        error: failed,
        old_fingerprint: '9f86d081884c7d65',
        new_fingerprint: 'a1b2c3d4e5f60718',
        restart_ms: 850,
        verified: failed === null,
      };
    },
    async copyRotatedKey(label) {
      host.calls.push(`copyRotatedKey:${label ?? ''}`);
      return `The new key for ${label ?? 'mcp_api_key on sekha-prod'} is on the clipboard for 30 seconds.`;
    },
    async rotateMany(targets) {
      host.calls.push(`rotateMany:${targets.length}`);
      const items = [];
      for (const [instance, name] of targets) {
        items.push({ instance, name, result: await host.rotateKey(instance, name), error: null });
      }
      return items;
    },
    async bulkProgress() {
      return [1, 2];
    },
    async rotationHistory(limit) {
      host.calls.push(`rotationHistory:${limit}`);
      return [
        {
          id: 1,
          instance: 'sekha-prod',
          name: 'mcp_api_key',
          old_fingerprint: '9f86d081884c7d65',
          new_fingerprint: 'a1b2c3d4e5f60718',
          started_at: now - 2 * 3600,
          finished_at: now - 2 * 3600 + 2,
          state: 'committed',
          detail: 'verified',
          operator: 'alice',
        },
      ];
    },
  };
}
