// Enrolled instances: list, enrollment, refresh, revocation, removal.
import type { InstanceView } from '../gen/InstanceView';
import { nowSeconds } from '../lib/clock';
import { HostError, type Host } from '../lib/host';
import type { FakeHost } from './index';

export interface FleetFake {
  fleet: InstanceView[];
  /** When set, addInstance fails with it. */
  addError: HostError | null;
  /** What the shell would read from the clipboard (never seen by the window). */
  clipboard: string;
}

type FleetCalls = Pick<
  Host,
  'instances' | 'addInstance' | 'addInstanceFromClipboard' | 'refreshInstance' | 'refreshAll' | 'revokeInstance' | 'removeInstance'
>;

/** An enrolled, healthy instance as the core would describe it, as of `now` (Unix seconds). */
export function sampleInstance(
  name: string,
  overrides: Partial<InstanceView> = {},
  now: number = Math.floor(nowSeconds()),
): InstanceView {
  return {
    name,
    address: '127.0.0.1:7443',
    profile: 'sekha',
    status: 'ok',
    status_text: 'Agent and service answer.',
    error_code: null,
    host: 'db-1',
    agent_version: '0.1.0',
    service_health: 'ok',
    service_detail: 'GET http://127.0.0.1:8080/health answered 200',
    last_contact: now - 30,
    cert_not_after: now + 30 * 86400,
    cert_renew_at: now + 20 * 86400,
    revoked: false,
    ...overrides,
  };
}

export function fleetFake(host: FakeHost, now: number): FleetFake & FleetCalls {
  return {
    fleet: [],
    addError: null,
    clipboard: '',
    async instances() {
      host.calls.push('instances');
      return host.fleet;
    },
    async addInstance(request) {
      host.calls.push(`addInstance:${request.name}:${request.address}`);
      if (host.addError) throw host.addError;
      const added = sampleInstance(request.name, { address: request.address }, now);
      host.fleet = [...host.fleet, added];
      return added;
    },
    async addInstanceFromClipboard(name, address, profile) {
      host.calls.push(`addInstanceFromClipboard:${name}:${address}:${profile}`);
      if (!host.clipboard.trim().startsWith('gh1.')) {
        throw new HostError('invalid_input', 'Invalid enrollment code: the clipboard holds no code from gatehouse-agent init.');
      }
      return host.addInstance({ name, address, code: host.clipboard, profile });
    },
    async refreshInstance(name) {
      host.calls.push(`refreshInstance:${name}`);
      return host.fleet.find((i) => i.name === name)!;
    },
    async refreshAll() {
      host.calls.push('refreshAll');
      return { reached: host.fleet.length, failed: 0, instances: host.fleet };
    },
    async revokeInstance(name) {
      host.calls.push(`revokeInstance:${name}`);
      host.fleet = host.fleet.map((i) =>
        i.name === name ? { ...i, revoked: true, status: 'failing', status_text: 'Revoked.' } : i,
      );
      return host.fleet.find((i) => i.name === name)!;
    },
    async removeInstance(name) {
      host.calls.push(`removeInstance:${name}`);
      host.fleet = host.fleet.filter((i) => i.name !== name);
    },
  };
}
