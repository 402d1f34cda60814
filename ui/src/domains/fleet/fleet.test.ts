import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleInstance } from '../../fakes';
import { FleetController } from './fleet.svelte';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the fleet controller', () => {
  it('polls the instances while started and not after it is stopped', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    const fleet = new FleetController(host, { onchange: () => {} });
    const stop = fleet.start();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(host.calls.filter((c) => c === 'instances').length, 'once at start, once a poll later').toBe(2);
    expect(fleet.instances?.map((i) => i.name), 'the list is what the host answered').toEqual(['sekha-prod']);
    stop();
    host.calls = [];
    await vi.advanceTimersByTimeAsync(60_000);
    expect(host.calls, 'a stopped controller leaves no timer behind').toEqual([]);
  });

  it('tells the overview after an action, whether or not it worked', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    let changes = 0;
    const fleet = new FleetController(host, { onchange: () => (changes += 1) });
    await fleet.refresh('sekha-prod');
    expect(changes, 'a refresh can change what needs attention').toBe(1);
    fleet.ask('revoke', host.fleet[0]!);
    expect(host.calls, 'asking changes nothing on the host').not.toContain('revokeInstance:sekha-prod');
    fleet.confirm();
    await vi.waitFor(() => expect(changes, 'the revocation is counted too').toBe(2));
    expect(fleet.instances?.[0]?.revoked, 'and the list shows it').toBe(true);
  });
});
