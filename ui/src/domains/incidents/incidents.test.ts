import { describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleInstance } from '../../fakes';
import { IncidentsController } from './incidents.svelte';

async function shown() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod'), sampleInstance('rae-prod')];
  await host.openIncident({ origin: 'hand', title: 'Brute force', severity: 'high', instances: ['sekha-prod', 'rae-prod'], ips: ['203.0.113.7'], from_us: 1, to_us: 2 });
  const incidents = new IncidentsController(host, { onopen: () => {}, ongo: () => {} });
  await incidents.focus(1);
  host.calls = [];
  return { host, incidents };
}

describe('the incidents controller', () => {
  it('changes a host only once the operator confirms', async () => {
    const { host, incidents } = await shown();
    incidents.action('block_ip');
    expect(incidents.blocking, 'the block dialog opens').toBe('block');
    expect(host.calls, 'nothing is sent before it is confirmed').toEqual([]);
    incidents.blocking = null;
    expect(host.calls, 'closing it sends nothing either').toEqual([]);
    incidents.action('restart_service');
    expect(incidents.confirm?.title, 'a restart names its host').toBe('Restart the service on sekha-prod?');
    incidents.cancel();
    expect(incidents.confirm, 'cancelling drops it').toBeNull();
    expect(host.calls, 'and still nothing is sent').toEqual([]);
  });

  it('says what a restart destroys when the service loses data on restart', async () => {
    const { host, incidents } = await shown();
    incidents.action('restart_service');
    expect(incidents.confirm?.body, 'nothing is said of a service that keeps its data').not.toMatch(/memor/);
    incidents.cancel();
    host.restartLosesData = 'Restart loses every memory unless RAE keeps them in a database.';
    await incidents.focus(1);
    incidents.action('restart_service');
    expect(incidents.confirm?.body, 'the restart confirmation carries the profile\'s warning').toMatch(
      /Restart loses every memory unless RAE keeps them in a database\./,
    );
  });

  it('refuses to block what is not an address, even when asked directly', async () => {
    const { host, incidents } = await shown();
    incidents.action('block_ip');
    incidents.blockIp = '203.0.113.256';
    expect(incidents.addressProblem, 'the reason, in words').toMatch(/0 to 255/);
    incidents.confirmBlock();
    expect(host.calls, 'nothing reaches the host').toEqual([]);
    expect(incidents.blocking, 'and the dialog stays open to correct it').toBe('block');
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

describe('why an address is blocked', () => {
  it('asks every instance, lifts the block only once confirmed, and says what each instance did', async () => {
    const { WhyBlockedController } = await import('./whyblocked.svelte');
    const host = fakeHost();
    host.blockedOn['203.0.113.7'] = ['alpha', 'beta'];
    const why = new WhyBlockedController(host);
    why.query = ' 203.0.113.7 ';
    await why.ask();
    expect(host.calls, 'the address is asked as typed, trimmed').toContain('whyBlocked:203.0.113.7');
    expect(why.blockedOn, 'where it is blocked now').toEqual(['alpha', 'beta']);
    expect(why.answer?.decisions[0]?.lines[0], 'with the lines behind the decision').toMatch(/401/);
    why.unblocking = { instance: 'alpha' };
    expect(host.calls.filter((c) => c.startsWith('unblock')), 'nothing is lifted before it is confirmed').toEqual([]);
    why.allowHours = 24;
    why.reason = 'our office NAT';
    await why.unblock();
    expect(host.calls, 'one instance, allowlisted for a day').toContain('unblockAddress:203.0.113.7:alpha:24');
    expect(why.outcomes?.map((o) => `${o.instance}:${o.ok}`), 'each instance says what it did').toEqual(['alpha:true']);
    expect(why.blockedOn, 'the answer is asked again: still blocked on beta').toEqual(['beta']);
  });

  it('blocks an address on every instance only with a reason', async () => {
    const { WhyBlockedController } = await import('./whyblocked.svelte');
    const host = fakeHost();
    const why = new WhyBlockedController(host);
    why.query = '203.0.113.9';
    await why.ask();
    why.blockingEverywhere = true;
    await why.blockEverywhere();
    expect(host.calls.filter((c) => c.startsWith('blockEverywhere')), 'no reason, no block').toEqual([]);
    why.reason = 'scanner seen on three hosts';
    await why.blockEverywhere();
    expect(host.calls, 'with one, it is sent').toContain('blockEverywhere:203.0.113.9');
    expect(why.blockedOn, 'and every instance says it is blocked').toEqual(['alpha', 'beta']);
  });
});
