import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleAlert, sampleInstance } from '../../fakes';
import { HeatmapsController } from './heatmaps.svelte';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

function started() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod')];
  host.alertList = [sampleAlert(1)];
  const heatmaps = new HeatmapsController(host, { theme: () => 'dark', onincident: () => {} });
  return { host, heatmaps, stop: heatmaps.start() };
}

describe('the heatmaps controller', () => {
  it('reads the alerts every two seconds only while their tab is shown', async () => {
    const { host, heatmaps, stop } = started();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.heatmapQueries[0]?.theme, 'the chart is drawn in the operator\'s theme').toBe('dark');
    host.calls = [];
    await vi.advanceTimersByTimeAsync(4_000);
    expect(host.calls, 'nothing is read between refreshes on the charts tab').toEqual([]);
    heatmaps.showAlerts();
    await vi.advanceTimersByTimeAsync(4_000);
    expect(host.calls.filter((c) => c === 'alerts:open').length, 'once on showing the tab, then every two seconds').toBe(3);
    stop();
  });

  it('stops every timer with its view', async () => {
    const { host, heatmaps, stop } = started();
    heatmaps.showAlerts();
    await vi.advanceTimersByTimeAsync(0);
    stop();
    host.calls = [];
    await vi.advanceTimersByTimeAsync(30_000);
    expect(host.calls, 'neither the ten-second refresh nor the alerts poll runs on').toEqual([]);
  });
});
