import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import App from './App.svelte';
import { fakeHost, sampleAlert, sampleCredential, sampleEvent, sampleInstance, sampleItem } from './fakes';
import { PALETTE_COMMANDS } from './lib/commands';
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

describe('a finding the console can fix', () => {
  it('offers rotating the key it names, which opens that key\'s preview and changes nothing yet', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', 40, { weak: true }), sampleCredential('sekha-prod/api_key/other', 40, { name: 'other' })];
    host.items = [
      sampleItem('pre.default-key', {
        text: 'Change the default API key',
        state: 'fail',
        state_text: 'a default or published key is in use',
        checks: [
          {
            check: 'default_key',
            status: 'fail',
            summary: 'a default or published key is in use, which anyone who read the docs has: mcp_api_key in config.toml (unset)',
            evidence: ['mcp_api_key is not set where Sekha reads it in config.toml (no root-level mcp_api_key): it uses its published default'],
            checked_at: 1_795_401_600,
            fixes: ['mcp_api_key'],
          },
        ],
      }),
    ];
    render(App, { host });
    await fireEvent.keyDown(window, { key: '5', ctrlKey: true });
    await fireEvent.click(await screen.findByRole('button', { name: /Change the default API key/ }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Rotate mcp_api_key…' }));
    await waitFor(() => expect(heading().textContent, 'the Rotation view').toBe('Rotation'));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('heading').textContent, 'the preview of exactly that key').toBe('Rotate mcp_api_key on sekha-prod');
    expect(host.calls.some((c) => c.startsWith('rotateKey')), 'nothing is rotated before the confirmation').toBe(false);
  });
});

describe('the palette\'s actions', () => {
  /** A fleet with something for every action: keys due, alerts, an open incident, events. */
  async function busyHost() {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', -3), sampleCredential('sekha-prod/api_key/API_KEY_ADMIN', 10, { name: 'API_KEY_ADMIN' })];
    host.alertList = [sampleAlert(2), sampleAlert(1)];
    host.timeline = [sampleEvent(1)];
    host.items = [sampleItem('pre.file-permissions')];
    await host.openIncident({ origin: 'hand', title: 'Brute force on sekha-prod', severity: 'high', instances: ['sekha-prod'], ips: ['203.0.113.7'], from_us: 1, to_us: 2 });
    host.calls = [];
    return host;
  }

  async function runFromPalette(query: string) {
    await fireEvent.keyDown(window, { key: 'k', ctrlKey: true });
    const input = screen.getByRole('textbox', { name: 'Command' });
    await fireEvent.input(input, { target: { value: query } });
    await fireEvent.keyDown(input, { key: 'Enter' });
  }

  /** Host calls that change something: none may happen before the usual confirmation. */
  const changes = (calls: string[]) =>
    calls.filter((c) => /^(rotateKey|rotateMany|incidentBlock|runChecks|exportEvents|setAlertState|openIncident|updateIncident)/.test(c));

  it('lists every action the console has, each leading somewhere', () => {
    const actions = PALETTE_COMMANDS.filter((c) => c.run.kind === 'intent');
    const kinds = actions.map((c) => (c.run.kind === 'intent' ? c.run.intent : null));
    for (const kind of ['rotate-key', 'block-address', 'run-checks', 'new-incident', 'export-timeline', 'acknowledge-alerts', 'sync-now', 'refresh-agents'] as const) {
      expect(kinds, `the palette offers ${kind}, as Settings promises "every view and command"`).toContain(kind);
    }
    for (const c of actions) expect(c.detail, `${c.label} says where it leads`).toBeTruthy();
  });

  it('rotates a key only through its dialog: the focus lands on the first key\'s Rotate…', async () => {
    const host = await busyHost();
    render(App, { host });
    await runFromPalette('rotate a key');
    await waitFor(() => expect(heading().textContent, 'the Rotation view').toBe('Rotation'));
    await waitFor(() => expect(document.activeElement?.textContent, 'the focus on a key\'s Rotate…').toBe('Rotate…'));
    expect(document.activeElement?.closest('[data-credential]')?.getAttribute('data-credential'), 'the soonest due key').toBe('sekha-prod/api_key/mcp_api_key');
    expect(changes(host.calls), 'nothing rotated').toEqual([]);
  });

  it('rotates every due key only after the count is typed in its dialog', async () => {
    const host = await busyHost();
    render(App, { host });
    await runFromPalette('rotate every due');
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('heading').textContent, 'the bulk rotation dialog').toBe('Rotate 2 keys across the fleet');
    expect((within(dialog).getByRole('button', { name: 'Rotate 2 keys' }) as HTMLButtonElement).disabled, 'waiting for the typed count').toBe(true);
    expect(changes(host.calls), 'nothing rotated').toEqual([]);
  });

  it('blocks an address only through the block dialog of the latest open incident', async () => {
    const host = await busyHost();
    render(App, { host });
    await runFromPalette('block');
    const dialog = await screen.findByRole('dialog');
    expect(heading().textContent, 'the Incidents view').toBe('Incidents');
    expect(within(dialog).getByRole('button', { name: 'Block 203.0.113.7 on sekha-prod' }), 'the block dialog, for the incident\'s address').toBeTruthy();
    expect(screen.getByRole('region', { name: 'Incident 1' }), 'with the incident shown behind it').toBeTruthy();
    expect(changes(host.calls), 'nothing blocked, no step recorded').toEqual([]);
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(changes(host.calls), 'and Cancel blocks nothing').toEqual([]);
  });

  it('opens the new incident form when there is no incident to block from', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    render(App, { host });
    await runFromPalette('block');
    expect(await screen.findByRole('form', { name: 'New incident' }), 'a new incident first').toBeTruthy();
    expect(screen.getByText(/Blocking is done within an incident/), 'and why').toBeTruthy();
  });

  it('runs the checks, exports and opens an incident only from their own buttons', async () => {
    const host = await busyHost();
    render(App, { host });
    await runFromPalette('run the compliance checks');
    await waitFor(() => expect(document.activeElement?.textContent, 'the focus on Run checks now').toBe('Run checks now'));
    await runFromPalette('export the timeline');
    await waitFor(() => expect(document.activeElement?.textContent, 'the focus on Export CSV, beside the filters').toBe('Export CSV'));
    await runFromPalette('open an incident');
    const form = await screen.findByRole('form', { name: 'New incident' });
    await waitFor(() => expect(document.activeElement, 'the focus in the form\'s first field').toBe(within(form).getByRole('textbox', { name: 'Title' })));
    expect(changes(host.calls), 'nothing run, exported or opened').toEqual([]);
  });

  it('syncs events and refreshes every agent only from their own buttons, which it leads to', async () => {
    const host = await busyHost();
    render(App, { host });
    const pulls = () => host.calls.filter((c) => c === 'syncNow' || c === 'refreshAll');
    await runFromPalette('sync events');
    await waitFor(() => expect(document.activeElement?.textContent, 'the focus on the timeline\'s Sync now').toBe('Sync now'));
    expect(heading().textContent, 'the Timeline view').toBe('Timeline');
    expect(screen.getByText(/Sync now asks every agent/), 'what the button does, in words').toBeTruthy();
    expect(pulls(), 'the palette itself syncs nothing').toEqual([]);
    await fireEvent.click(document.activeElement!);
    await waitFor(() => expect(pulls(), 'pressing the button it led to syncs').toEqual(['syncNow']));
    expect(screen.queryByText(/Sync now asks every agent/), 'the note goes once the button is used').toBeNull();

    await runFromPalette('refresh every agent');
    await waitFor(() => expect(document.activeElement?.textContent?.trim(), 'the focus on the fleet\'s Refresh all').toBe('Refresh all'));
    expect(heading().textContent, 'the Fleet view').toBe('Fleet');
    expect(pulls(), 'the palette itself contacts no agent').toEqual(['syncNow']);
    await fireEvent.click(document.activeElement!);
    await waitFor(() => expect(pulls(), 'pressing Refresh all contacts them').toEqual(['syncNow', 'refreshAll']));
  });

  it('acknowledges alerts only after the confirmation naming how many', async () => {
    const host = await busyHost();
    render(App, { host });
    await runFromPalette('acknowledge');
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('heading').textContent, 'the count is named').toBe('Acknowledge 2 new alerts?');
    expect(changes(host.calls), 'nothing acknowledged yet').toEqual([]);
  });
});
