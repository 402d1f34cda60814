import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import App from './App.svelte';
import { fakeHost } from './fakes';
import { HostError } from './lib/host';
import { VIEWS } from './lib/views';

afterEach(() => {
  cleanup();
  delete document.documentElement.dataset.theme;
});

const heading = () => screen.getByRole('heading', { level: 1 });

describe('the shell', () => {
  it('opens on the fleet view with what needs attention and how to start', async () => {
    render(App, { host: fakeHost() });
    expect(heading().textContent, 'the fleet view comes first').toBe('Fleet');
    await screen.findByText('No instances yet');
    expect(screen.getByText('./scripts/demo.sh'), 'the empty fleet names the demo command').toBeTruthy();
    expect(
      screen.queryByText('No instances enrolled yet'),
      'the empty state replaces the fleet row of the attention list',
    ).toBeNull();
    expect(screen.getByText('Nothing needs attention right now.'), 'the attention list says nothing needs it').toBeTruthy();
  });

  it('reaches every view with Ctrl+digit and each has an explanation', async () => {
    render(App, { host: fakeHost() });
    for (const view of VIEWS) {
      await fireEvent.keyDown(window, { key: view.key, ctrlKey: true });
      expect(heading().textContent, `Ctrl+${view.key}`).toBe(view.label);
      const content = screen.getByTestId(`view-${view.id}`);
      expect(content.textContent?.trim().length, `${view.label} must not be blank`).toBeGreaterThan(40);
    }
  });

  it('moves between views with the arrow keys in the sidebar', async () => {
    render(App, { host: fakeHost() });
    const fleet = screen.getByRole('button', { name: /Fleet/ });
    await fireEvent.keyDown(fleet, { key: 'ArrowDown' });
    expect(heading().textContent, 'ArrowDown moves to the next view').toBe('Timeline');
    expect(document.activeElement?.getAttribute('data-view'), 'focus follows the selection').toBe('timeline');
  });

  it('runs a command from the palette with the keyboard alone', async () => {
    const host = fakeHost();
    render(App, { host });
    await fireEvent.keyDown(window, { key: 'k', ctrlKey: true });
    const input = screen.getByRole('textbox', { name: 'Command' });
    await fireEvent.input(input, { target: { value: 'theme dark' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(host.calls, 'the palette command reaches the host').toContain('setTheme:dark'));
    expect(document.documentElement.dataset.theme, 'the dark theme is applied').toBe('dark');
    expect(screen.queryByRole('dialog'), 'the palette closes after running').toBeNull();
  });

  it('says plainly when no keychain is reachable and offers the fix', async () => {
    const host = fakeHost();
    host.keychain = {
      state: 'unavailable',
      service: 'Gatehouse',
      backend: 'Secret Service (D-Bus)',
      message: 'The OS keychain is not reachable (no bus). Start a Secret Service provider.',
    };
    render(App, { host });
    const alert = await screen.findByText(/The OS keychain is not reachable/);
    expect(alert, 'the message from the core is shown').toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Open keychain settings' }));
    expect(heading().textContent, 'the button opens Settings').toBe('Settings');
  });

  it('shows why the console could not open its data instead of a blank view', async () => {
    const host = fakeHost();
    host.overviewError = new HostError('schema_too_new', 'The database has schema version 9.');
    render(App, { host });
    await screen.findByText('Gatehouse cannot open its data');
    expect(screen.getByText('The database has schema version 9.'), 'the reason from the core is shown').toBeTruthy();
    expect(screen.getByRole('button', { name: 'Try again' }), 'with a way to try again').toBeTruthy();
  });

  it('renders text from hosts as text, never as markup', async () => {
    const host = fakeHost();
    host.overviewOverride = {
      attention: [
        { view: 'settings', status: 'failing', title: '<img src=x id=injected>', detail: '<b>bold</b>' },
      ],
    };
    const { container } = render(App, { host });
    await screen.findByText('<img src=x id=injected>');
    expect(container.querySelector('#injected'), 'no element may be created from host text').toBeNull();
  });
});
