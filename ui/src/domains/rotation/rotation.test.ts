import { afterEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleCredential, sampleInstance } from '../../fakes';
import { RotationController } from './rotation.svelte';

afterEach(() => {
  vi.useRealTimers();
});

describe('the rotation controller', () => {
  it('asks for bulk progress only while a bulk rotation runs in its view', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', -3)];
    // A bulk rotation that is still running when the operator leaves the view.
    host.rotateMany = () => new Promise(() => {});
    const progress = vi.spyOn(host, 'bulkProgress');
    const rotation = new RotationController(host);
    const stop = rotation.start();
    await vi.waitFor(() => expect(rotation.dueKeys.length, 'the overdue key is due').toBe(1));
    rotation.rotateAllDue();
    void rotation.bulk!.run();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(progress, 'progress is asked for every half second').toHaveBeenCalledTimes(2);
    stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(progress, 'a view that went away asks no more').toHaveBeenCalledTimes(2);
  });

  it('reads the inventory again only when a dialog rotated something', async () => {
    const host = fakeHost();
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', -3)];
    const rotation = new RotationController(host);
    rotation.start();
    await vi.waitFor(() => expect(rotation.inventory, 'the inventory is read at start').not.toBeNull());
    rotation.rotate(rotation.credentials[0]!);
    host.calls = [];
    rotation.closed(false);
    expect(rotation.single, 'the dialog is gone').toBeNull();
    expect(host.calls, 'nothing changed, nothing is read').toEqual([]);
    rotation.rotate(rotation.credentials[0]!);
    rotation.closed(true);
    await vi.waitFor(() => expect(host.calls, 'a rotated key is read back').toContain('credentials'));
  });
});
