import { describe, expect, it, vi } from 'vitest';

import { fakeHost } from '../../fakes';
import { HostError } from '../../lib/host';
import { ShellController } from './shell.svelte';

describe('the shell controller', () => {
  it('reports the first frame on screen once, after the shell mounts', async () => {
    const host = fakeHost();
    const shell = new ShellController(host, { onalert: async () => {} });
    const stop = shell.start();
    expect(host.calls, 'not before a frame is drawn').not.toContain('firstPaint');
    await vi.waitFor(() => expect(host.calls, 'two frames later').toContain('firstPaint'));
    expect(host.calls.filter((c) => c === 'firstPaint').length, 'once').toBe(1);
    stop();
  });

  it('opens each clicked notification in turn, and none once stopped', async () => {
    const host = fakeHost();
    const opened: number[] = [];
    const shell = new ShellController(host, { onalert: async (id) => void opened.push(id) });
    const stop = shell.start();
    await vi.waitFor(() => expect(host.calls, 'the shell waits for a click').toContain('nextOpenedAlert'));
    host.openAlert(4);
    await vi.waitFor(() => expect(opened, 'the clicked alert is opened').toEqual([4]));
    await vi.waitFor(() => expect(host.calls.filter((c) => c === 'nextOpenedAlert').length, 'and the next click awaited').toBe(2));
    stop();
    host.openAlert(5);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(opened, 'a closed window opens nothing').toEqual([4]);
  });

  it('shows why a theme from the palette was not saved', async () => {
    const host = fakeHost();
    host.setTheme = async () => {
      throw new HostError('database', 'The settings could not be written.');
    };
    const shell = new ShellController(host, { onalert: async () => {} });
    shell.chooseTheme('dark');
    await vi.waitFor(() => expect(shell.error?.message, 'the reason is kept for the notice').toBe('The settings could not be written.'));
    expect(shell.theme, 'the theme stays as it was').toBe('system');
  });
});
