import { describe, expect, it } from 'vitest';

import { nowSeconds } from '../lib/clock';
import { fakeHost, sampleAlert, sampleEvent } from '.';

describe('the fake host', () => {
  it('builds its sample data around the now a test passes in', async () => {
    const now = 2_000_000_000;
    const host = fakeHost({ now });
    const [record] = await host.rotationHistory(1);
    expect(record?.started_at, 'a past rotation sits before the given now').toBe(now - 2 * 3600);
    const inventory = await host.credentials();
    expect(inventory.checked_at, 'the inventory is checked at the given now').toBe(now);
    const view = await host.compliance({ instance: null, filter: null });
    expect(view.generated_at, 'the checklist is generated at the given now').toBe(now);
  });

  it('defaults to the pinned clock, so samples never depend on the day the suite runs', () => {
    const now = Math.floor(nowSeconds());
    expect(sampleAlert(1).last_us / 1e6, 'an alert is from before now').toBeLessThan(now);
    expect(sampleEvent(2).time_us, 'a higher sequence number is newer').toBeGreaterThan(sampleEvent(1).time_us);
    expect(sampleEvent(1, {}, now).time_us / 1e6, 'events sit within the last day').toBeGreaterThan(now - 86400);
  });
});
