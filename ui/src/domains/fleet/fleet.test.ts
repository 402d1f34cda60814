import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleInstance } from '../../fakes';
import type { Attention } from '../../gen/Attention';
import type { SyncState } from '../../gen/SyncState';
import { attentionLine } from './attention';
import { lastHeard } from './contact';
import { addressProblem, codeProblem, nameProblem, normalCode } from './enroll';
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
  const sync = (lastSync: number | null): SyncState => ({ instance: 'sekha-prod', after: 9, events: 9, gaps: 0, last_sync: lastSync, last_error: null, failures: 0, unparsed: 0 });

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
  const item = (title: string, detail = '12 failed sign-ins from 203.0.113.7.'): Attention => ({ view: 'heatmaps', status: 'failing', title, detail });

  it('leads a line about many alerts to them all, keeping the core\'s words', () => {
    const line = attentionLine(item('22 new alerts, not yet acknowledged', 'Latest: 12 failed sign-ins from 203.0.113.7.'));
    expect(line.title, 'the count, and what "new" means').toBe('22 new alerts, not yet acknowledged');
    expect(line.detail, 'the one detail is marked as the latest alert\'s').toBe('Latest: 12 failed sign-ins from 203.0.113.7.');
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

describe('the Add instance fields', () => {
  const CODE = `gh1.${'a'.repeat(32)}.${'0'.repeat(64)}`;

  it('say what is wrong with a name: it becomes a DNS label', () => {
    expect(nameProblem('edge-1'), 'a DNS label').toBeNull();
    expect(nameProblem(''), 'empty waits to be filled').toBeNull();
    expect(nameProblem('Edge-1'), 'upper case').toMatch(/lower case.*DNS label/);
    expect(nameProblem('edge_1'), 'an underscore, named').toMatch(/"_" cannot be in a DNS label/);
    expect(nameProblem('edge 1'), 'a space, named').toMatch(/a space cannot be in a DNS label/);
    expect(nameProblem('-edge'), 'a leading dash').toMatch(/start with a letter or a digit/);
    expect(nameProblem('a'.repeat(41)), 'too long, with its length').toMatch(/at most 40 characters \(this is 41\)/);
  });

  it('say what is wrong with an address: host:port', () => {
    for (const ok of ['10.0.0.5:7443', 'agent.example.net:7443', '[2001:db8::5]:7443', ' 10.0.0.5:7443 ']) expect(addressProblem(ok), `${ok} is host:port`).toBeNull();
    expect(addressProblem('10.0.0.5'), 'no port').toMatch(/add the port/);
    expect(addressProblem('2001:db8::5:7443'), 'IPv6 without brackets').toMatch(/in brackets/);
    expect(addressProblem('https://10.0.0.5:7443'), 'a URL').toMatch(/without a scheme/);
    expect(addressProblem('10.0.0.5:70000'), 'a port out of range').toMatch(/1 to 65535/);
  });

  it('say what is wrong with a code, and take one a terminal wrapped over lines', () => {
    expect(codeProblem(CODE), 'the whole code').toBeNull();
    expect(codeProblem(`${CODE.slice(0, 50)}\n${CODE.slice(50)}\n`), 'line breaks from a terminal do not matter').toBeNull();
    expect(normalCode(`${CODE.slice(0, 50)}\n  ${CODE.slice(50)}`), 'and are taken out of what is sent').toBe(CODE);
    expect(codeProblem(CODE.slice(0, 60)), 'cut short').toMatch(/cut short: paste the whole code from gatehouse-agent init/);
    expect(codeProblem('7443'), 'something else pasted').toMatch(/it starts with gh1\./);
  });
});
