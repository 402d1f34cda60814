import { afterEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleEvent, sampleInstance } from '../../fakes';
import { arrivals } from './arrivals';
import { TimelineController } from './timeline.svelte';

afterEach(() => {
  vi.useRealTimers();
});

describe('live arrivals', () => {
  it('puts newer events on top and notices older ones without mixing them in', () => {
    const shown = [sampleEvent(10), sampleEvent(9)];
    const page = [sampleEvent(12), sampleEvent(11), sampleEvent(10), sampleEvent(9), sampleEvent(3)];
    const { newer, older } = arrivals(shown, page);
    expect(newer.map((e) => e.seq), 'only what is newer than the top goes on top').toEqual([12, 11]);
    expect(older, 'a backfilled older event is offered as a reload').toBe(true);
    expect(arrivals(shown, shown).newer, 'a page already shown brings nothing').toEqual([]);
  });
});

describe('the timeline controller', () => {
  it('follows new events while started and stops with its view', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.timeline = [sampleEvent(1)];
    const timeline = new TimelineController(host, { preset: () => null, onincident: () => {} });
    const stop = timeline.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(timeline.events.map((e) => e.seq), 'the first page is shown').toEqual([1]);
    expect(host.calls.filter((c) => c === 'syncStates').length, 'sync state is read at start and every two seconds').toBe(2);
    stop();
    host.calls = [];
    await vi.advanceTimersByTimeAsync(10_000);
    expect(host.calls, 'a stopped timeline polls no more').toEqual([]);
  });
});
