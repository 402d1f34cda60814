import { afterEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleEvent, sampleInstance } from '../../fakes';
import { arrivals } from './arrivals';
import { otherYear, time } from './format';
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

describe('event times', () => {
  const at = (year: number) => sampleEvent(1, { time_us: new Date(year, 10, 23, 9, 5, 7, 250).getTime() * 1000 });
  const NOW = new Date(2026, 10, 23, 12);

  it('carry the year when the event is from another year', () => {
    expect(time(at(2099), NOW), 'a line stamped 2099 must not read as this November').toContain('2099');
    expect(time(at(2025), NOW), 'nor one from last year').toContain('2025');
    expect(otherYear(at(2099), NOW), 'the list widens its time column for it').toBe(true);
  });

  it('leave the year out within the current year, to the millisecond', () => {
    const shown = time(at(2026), NOW);
    expect(shown, 'the current year goes without saying').not.toContain('2026');
    expect(shown, 'the time to the millisecond').toMatch(/09:05:07[.,]250/);
  });

  it('take the current year from the clock passed in', () => {
    expect(time(at(2026), new Date(2027, 0, 2)), 'in 2027, a 2026 line says 2026').toContain('2026');
  });
});
