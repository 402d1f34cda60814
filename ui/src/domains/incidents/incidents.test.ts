import { describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleInstance } from '../../fakes';
import { IncidentsController } from './incidents.svelte';

async function shown() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod'), sampleInstance('rae-prod')];
  await host.openIncident({ title: 'Brute force', severity: 'high', instances: ['sekha-prod', 'rae-prod'], ips: ['203.0.113.7'], from_us: 1, to_us: 2 });
  const incidents = new IncidentsController(host, { onopen: () => {}, ongo: () => {} });
  await incidents.focus(1);
  host.calls = [];
  return { host, incidents };
}

describe('the incidents controller', () => {
  it('changes a host only once the operator confirms', async () => {
    const { host, incidents } = await shown();
    incidents.action('block_ip');
    expect(incidents.confirm?.title, 'the confirmation names the address and the host').toBe('Block 203.0.113.7 on sekha-prod?');
    expect(host.calls, 'nothing is sent before it').toEqual([]);
    incidents.cancel();
    expect(incidents.confirm, 'cancelling drops it').toBeNull();
    expect(host.calls, 'and still nothing is sent').toEqual([]);
  });

  it('lists snapshots before a restore and forgets them when the target changes', async () => {
    const { host, incidents } = await shown();
    incidents.action('restore_database');
    await vi.waitFor(() => expect(incidents.snapshotNames, 'the first press lists the snapshots').toEqual(['20261123T090000Z-snapshot.sqlite3']));
    expect(host.calls, 'of the target instance').toContain('snapshots:sekha-prod');
    expect(incidents.confirm, 'nothing is restored yet').toBeNull();
    incidents.blockInstance = 'rae-prod';
    incidents.targetChanged();
    expect(incidents.snapshotNames, 'another instance has snapshots of its own').toBeNull();
  });
});
