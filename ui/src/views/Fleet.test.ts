import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import App from '../App.svelte';
import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleAlert, sampleInstance } from '../fakes';
import { nowSeconds } from '../lib/clock';
import { HostError } from '../lib/host';

afterEach(cleanup);

const CODE = `gh1.${'a'.repeat(32)}.${'0'.repeat(64)}`;

describe('the fleet view', () => {
  it('lists instances with a status word, the reason, and the address', async () => {
    const host = fakeHost();
    host.fleet = [
      sampleInstance('sekha-prod'),
      sampleInstance('rae-1', { status: 'failing', status_text: 'Cannot reach the agent at 10.0.0.9:7443.', error_code: 'agent_unreachable' }),
    ];
    render(App, { host });
    const row = await screen.findByText('rae-1');
    const tr = row.closest('tr')!;
    expect(within(tr).getByText('Failing'), 'status is a word, not only a colour').toBeTruthy();
    expect(within(tr).getByText('Cannot reach the agent at 10.0.0.9:7443.'), 'the reason is shown beside the instance').toBeTruthy();
    expect(screen.getByText('Instances (2)'), 'the heading counts the instances').toBeTruthy();
  });

  it('enrolls an instance from the dialog and shows it', async () => {
    const host = fakeHost();
    render(App, { host });
    await fireEvent.click(await screen.findByRole('button', { name: 'Add instance' }));
    const enroll = screen.getByRole('button', { name: /^Enroll/ }) as HTMLButtonElement;
    expect(enroll.disabled, 'nothing to send until the form is valid').toBe(true);
    await fireEvent.input(screen.getByLabelText(/^Name/), { target: { value: 'edge-1' } });
    await fireEvent.input(screen.getByLabelText(/^Agent address/), { target: { value: '10.0.0.5:7443' } });
    await fireEvent.input(screen.getByLabelText(/^Enrollment code/), { target: { value: CODE } });
    expect(enroll.textContent?.trim(), 'a typed code is sent as typed').toBe('Enroll');
    expect(enroll.disabled, 'a valid form can be sent').toBe(false);
    await fireEvent.click(enroll);
    await waitFor(() => expect(host.calls, 'the enrollment goes to the host').toContain('addInstance:edge-1:10.0.0.5:7443'));
    await screen.findByText('edge-1');
    expect(screen.queryByRole('dialog'), 'the dialog closes on success').toBeNull();
  });

  it('enrolls with the copied code, which the app reads and the window never holds', async () => {
    const host = fakeHost();
    host.clipboard = CODE;
    render(App, { host });
    await fireEvent.click(await screen.findByRole('button', { name: 'Add instance' }));
    await fireEvent.input(screen.getByLabelText(/^Name/), { target: { value: 'edge-2' } });
    await fireEvent.input(screen.getByLabelText(/^Agent address/), { target: { value: '10.0.0.6:7443' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enroll with the copied code' }));
    await waitFor(() => expect(host.calls, 'the app is asked to read the clipboard').toContain('addInstanceFromClipboard:edge-2:10.0.0.6:7443:'));
    await screen.findByText('edge-2');
    expect(document.body.innerHTML.includes(CODE.slice(4, 30)), 'the code never reached the page').toBe(false);
  });

  it('says next to each field what is wrong with it, not only in red', async () => {
    render(App, { host: fakeHost() });
    await fireEvent.click(await screen.findByRole('button', { name: 'Add instance' }));
    const name = screen.getByLabelText(/^Name/);
    await fireEvent.input(name, { target: { value: 'Edge_1' } });
    expect(name.getAttribute('aria-invalid'), 'the field is marked').toBe('true');
    const why = document.getElementById(name.getAttribute('aria-describedby')!);
    expect(why?.textContent, 'and the words beside it say why').toMatch(/lower case.*DNS label/);
    await fireEvent.input(screen.getByLabelText(/^Agent address/), { target: { value: '10.0.0.5' } });
    expect(screen.getByText(/add the port the agent listens on/), 'the address says it lacks a port').toBeTruthy();
    await fireEvent.input(screen.getByLabelText(/^Enrollment code/), { target: { value: CODE.slice(0, 40) } });
    expect(screen.getByText(/cut short: paste the whole code from gatehouse-agent init/), 'the code says it is cut short').toBeTruthy();
    expect((screen.getByRole('button', { name: /^Enroll/ }) as HTMLButtonElement).disabled, 'nothing is sent meanwhile').toBe(true);
    await fireEvent.input(name, { target: { value: 'edge-1' } });
    expect(name.getAttribute('aria-invalid'), 'a corrected field is no longer marked').toBeNull();
    expect(screen.queryByText(/use lower case/), 'and its words go').toBeNull();
  });

  it('keeps the dialog open with the reason when enrollment fails', async () => {
    const host = fakeHost();
    host.addError = new HostError('fingerprint_mismatch', 'The agent presented a certificate whose fingerprint does not match.');
    render(App, { host });
    await fireEvent.click(await screen.findByRole('button', { name: 'Add instance' }));
    await fireEvent.input(screen.getByLabelText(/^Name/), { target: { value: 'edge-1' } });
    await fireEvent.input(screen.getByLabelText(/^Agent address/), { target: { value: '10.0.0.5:7443' } });
    await fireEvent.input(screen.getByLabelText(/^Enrollment code/), { target: { value: CODE } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enroll' }));
    await screen.findByText(/fingerprint does not match/);
    expect(screen.getByRole('dialog'), 'the operator can correct and retry').toBeTruthy();
  });

  it('asks before revoking, naming the target and the impact', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    render(App, { host });
    await fireEvent.click(await screen.findByRole('button', { name: 'Revoke sekha-prod' }));
    const dialog = screen.getByRole('dialog');
    expect(within(dialog).getByText(/refuse this console's certificate at once/), 'the confirmation names the impact').toBeTruthy();
    expect(host.calls, 'nothing happens before confirmation').not.toContain('revokeInstance:sekha-prod');
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Revoke sekha-prod' }));
    await waitFor(() => expect(host.calls, 'confirming revokes').toContain('revokeInstance:sekha-prod'));
    await screen.findByText('Revoked.');
  });

  it('cancels a removal with Escape', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    render(App, { host });
    await fireEvent.click(await screen.findByRole('button', { name: 'Remove sekha-prod' }));
    await fireEvent.keyDown(screen.getByRole('dialog'), { key: 'Escape' });
    expect(screen.queryByRole('dialog'), 'Escape closes the confirmation').toBeNull();
    expect(host.calls, 'and nothing is removed').not.toContain('removeInstance:sekha-prod');
  });

  it('names the agent\'s host as a host, not a bare word', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod', { host: 'vm' })];
    render(App, { host });
    const row = (await screen.findByText('sekha-prod')).closest('tr')!;
    expect(within(row).getByText('vm').parentElement?.textContent, 'the host name is labelled').toBe('host vm');
  });

  it('counts each instance\'s unparsed lines and leads to them on the timeline', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod'), sampleInstance('rae-lab')];
    host.syncList = [
      { instance: 'sekha-prod', after: 40, events: 40, gaps: 0, last_sync: null, last_error: null, failures: 0, unparsed: 1234 },
      { instance: 'rae-lab', after: 9, events: 9, gaps: 0, last_sync: null, last_error: null, failures: 0, unparsed: 0 },
    ];
    render(App, { host });
    const row = (await screen.findByText('sekha-prod')).closest('tr')!;
    const link = await within(row).findByRole('button', { name: /unparsed lines/ });
    expect(link.textContent?.replace(/\s+/g, ' ').trim(), 'the count, readable').toBe('1,234 unparsed lines');
    const other = screen.getByText('rae-lab').closest('tr')!;
    expect(within(other).queryByTestId('unparsed'), 'an instance whose lines were all understood says nothing').toBeNull();
    await fireEvent.click(link);
    await waitFor(() => expect(screen.getByRole('heading', { level: 1 }).textContent, 'the link leads to the timeline').toBe('Timeline'));
    expect((await screen.findByTestId('timeline-preset')).textContent, 'showing what it promised').toMatch(/Lines from sekha-prod that no format understood/);
    await waitFor(() => expect(host.lastFilter, 'exactly that instance\'s unparsed lines').toMatchObject({ instance: 'sekha-prod', kind: 'unparsed' }));
  });

  it('shows the last event pull when it is more recent than the last contact', async () => {
    const host = fakeHost();
    const now = Math.floor(nowSeconds());
    host.fleet = [sampleInstance('sekha-prod', { last_contact: now - 32 }, now)];
    host.syncList = [{ instance: 'sekha-prod', after: 40, events: 40, gaps: 0, last_sync: now * 1e6, last_error: null, failures: 0, unparsed: 0 }];
    render(App, { host });
    const heard = await screen.findByTestId('last-heard');
    await waitFor(() => expect(heard.textContent, 'events were pulled just now, after the health check 32 s ago').toBe('synced just now'));
    expect(heard.getAttribute('title'), 'the hover says what the time is of').toMatch(/^Events last pulled /);
  });

  it('says how many alerts need attention and opens the Alerts tab on them all', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.alertList = [sampleAlert(2), sampleAlert(1)];
    host.overviewOverride = {
      instances: 1,
      attention: [{ view: 'heatmaps', status: 'failing', title: '22 new alerts, not yet acknowledged', detail: 'Latest: 12 failed sign-ins from 203.0.113.7 against sekha-prod within 1 min.' }],
    };
    render(App, { host });
    expect(await screen.findByText('22 new alerts, not yet acknowledged'), 'the line says what the number counts').toBeTruthy();
    expect(screen.getByText(/^Latest: 12 failed sign-ins/), 'the one detail is marked as the latest alert\'s').toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'See all 22 alerts' }));
    await waitFor(() => expect(screen.getByRole('heading', { level: 1 }).textContent, 'the link leads to Heatmaps').toBe('Heatmaps'));
    await waitFor(() => expect(screen.getByTestId('tab-alerts').getAttribute('aria-selected'), 'on its Alerts tab').toBe('true'));
    expect(await screen.findByTestId('alerts'), 'with the alerts listed').toBeTruthy();
  });
});

describe('text from hosts on the fleet', () => {
  it('shows the agent\'s host name and the status reason with visible escapes', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod', { host: HOSTILE, status: 'failing', status_text: `Cannot reach ${HOSTILE}` })];
    host.overviewOverride = { instances: 1, attention: [{ view: 'fleet', status: 'failing', title: 'sekha-prod needs attention', detail: `Cannot reach ${HOSTILE}` }] };
    render(App, { host });
    const row = (await screen.findByText('sekha-prod')).closest('tr')!;
    expect(row.textContent, 'the host name, escaped').toContain(`host ${HOSTILE_SHOWN}`);
    expect(row.textContent, 'the reason, escaped').toContain(`Cannot reach ${HOSTILE_SHOWN}`);
    await screen.findByText('sekha-prod needs attention');
    expect(holdsHidden(screen.getByRole('region', { name: 'Needs attention' }).textContent), 'the attention line too').toBe(false);
    expect(holdsHidden(row.textContent), 'nothing hidden is left in the row').toBe(false);
  });
});
