import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleInstance } from '../../fakes';
import type { Attention } from '../../gen/Attention';
import type { SyncState } from '../../gen/SyncState';
import { attentionLine } from './attention';
import { lastHeard } from './contact';
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

describe('the fleet controller and the event pull', () => {
  it('reads the sync state every two seconds, far more often than the instances', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    const fleet = new FleetController(host, { onchange: () => {} });
    const stop = fleet.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(host.calls.filter((c) => c === 'syncStates').length, 'once at start and every two seconds: "synced" stays fresh').toBe(6);
    expect(host.calls.filter((c) => c === 'instances').length, 'the instances only at start within the 15 s poll').toBe(1);
    stop();
    host.calls = [];
    await vi.advanceTimersByTimeAsync(10_000);
    expect(host.calls, 'the sync poll stops with the view').toEqual([]);
  });
});

describe('when an instance was last heard from', () => {
  const NOW = 1_795_000_000;
  const sync = (lastSync: number | null): SyncState => ({ instance: 'sekha-prod', after: 9, events: 9, gaps: 0, last_sync: lastSync, last_error: null, failures: 0 });

  it('prefers the event pull when it is more recent than the health check', () => {
    const instance = sampleInstance('sekha-prod', { last_contact: NOW - 32 }, NOW);
    expect(lastHeard(instance, [sync((NOW - 1) * 1e6)]), 'pulled a second ago: the sync state is stamped in microseconds').toEqual({ words: 'synced', at: NOW - 1 });
  });

  it('keeps the last contact when it is the more recent, or nothing was pulled', () => {
    const instance = sampleInstance('sekha-prod', { last_contact: NOW - 32 }, NOW);
    expect(lastHeard(instance, [sync((NOW - 600) * 1e6)]), 'a pull ten minutes ago is older than the contact').toEqual({ words: 'last contact', at: NOW - 32 });
    expect(lastHeard(instance, [sync(null)]), 'never pulled').toEqual({ words: 'last contact', at: NOW - 32 });
    expect(lastHeard(instance, []), 'no sync state for it at all').toEqual({ words: 'last contact', at: NOW - 32 });
  });

  it('uses the pull alone for an instance never contacted, and says never without either', () => {
    const instance = sampleInstance('sekha-prod', { last_contact: null }, NOW);
    expect(lastHeard(instance, [sync(NOW * 1e6)]), 'the pull is all there is').toEqual({ words: 'synced', at: NOW });
    expect(lastHeard(instance, []), 'nothing heard at all').toBeNull();
  });
});

describe('the attention line about alerts', () => {
  const item = (title: string): Attention => ({ view: 'heatmaps', status: 'failing', title, detail: '12 failed sign-ins from 203.0.113.7.' });

  it('says how many alerts, that the detail is the latest one, and leads to them all', () => {
    const line = attentionLine(item('22 new alerts'));
    expect(line.title, 'the count, and what "new" means').toBe('22 new alerts, not yet acknowledged');
    expect(line.detail, 'the one detail the core sends is the latest alert\'s').toBe('Latest: 12 failed sign-ins from 203.0.113.7.');
    expect(line.link, 'the link promises them all').toBe('See all 22 alerts');
    expect(line.intent, 'and opens the Alerts tab').toBe('alerts');
  });

  it('leaves a single alert as the core wrote it, still leading to the Alerts tab', () => {
    const line = attentionLine(item('New alert: Brute force on sekha-prod'));
    expect(line.title, 'one alert names itself').toBe('New alert: Brute force on sekha-prod');
    expect(line.detail, 'its detail is its own').toBe('12 failed sign-ins from 203.0.113.7.');
    expect(line.intent, 'the Alerts tab').toBe('alerts');
  });

  it('leaves lines of other views alone, leading to their view', () => {
    const line = attentionLine({ view: 'rotation', status: 'failing', title: '3 credentials need rotating', detail: 'overdue by 2 days' });
    expect(line, 'the title, the detail and the view as they came').toEqual({ title: '3 credentials need rotating', detail: 'overdue by 2 days', link: 'Rotation', intent: null });
  });
});
