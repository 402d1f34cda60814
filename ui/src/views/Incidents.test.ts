import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleInstance, withHost } from '../fakes';
import type { TimelinePreset } from '../lib/preset';
import Incidents from './Incidents.svelte';

afterEach(cleanup);

async function withIncident() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod')];
  await host.openIncident({ origin: 'hand', title: 'Brute force on sekha-prod', severity: 'high', instances: ['sekha-prod'], ips: ['203.0.113.7'], from_us: 1, to_us: 2 });
  host.calls = [];
  return host;
}

describe('incidents', () => {
  it('shows the playbook step with what to look at, decide and do', async () => {
    const host = await withIncident();
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    expect(detail.textContent, 'the context').toContain('203.0.113.7');
    expect(detail.textContent, 'what to look at').toContain('Look at:');
    expect(detail.textContent, 'what to decide').toContain('Decide:');
    await fireEvent.click(within(detail).getByRole('button', { name: 'Containment' }));
    expect(await within(detail).findByRole('button', { name: 'Block an address…' }), 'containment offers the block').toBeTruthy();
  });

  it('shows a step when it is chosen and moves the incident on only when asked', async () => {
    const host = await withIncident();
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Containment' }));
    expect(within(detail).getByRole('button', { name: 'Block an address…' }), 'the chosen step is shown with its actions').toBeTruthy();
    expect(host.calls.some((c) => c.startsWith('updateIncident')), 'reading a step is not a decision: nothing is recorded').toBe(false);
    expect(screen.getByTestId('incident-log').textContent, 'and the log says nothing of it').not.toMatch(/on to/);
    expect(within(detail).getByRole('button', { name: 'Detection' }).getAttribute('aria-current'), 'the incident is still on its step').toBe('step');
    await fireEvent.click(within(detail).getByRole('button', { name: 'Move on to this step' }));
    await waitFor(() => expect(host.calls, 'moving on is the explicit button').toContain('updateIncident:1:null:null:containment'));
    await waitFor(() => expect(within(detail).getByRole('button', { name: 'Containment' }).getAttribute('aria-current'), 'now the current step').toBe('step'));
    expect(within(detail).queryByRole('button', { name: 'Move on to this step' }), 'no moving on to where it already is').toBeNull();
  });

  it('saves an owner typed in the window', async () => {
    const host = await withIncident();
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    const owner = within(detail).getByRole('textbox', { name: 'Owner' });
    const save = within(detail).getByRole('button', { name: 'Save owner' }) as HTMLButtonElement;
    expect(save.disabled, 'nothing to save yet').toBe(true);
    await fireEvent.input(owner, { target: { value: ' alice ' } });
    await fireEvent.click(save);
    await waitFor(() => expect(host.calls, 'the owner goes to the host, trimmed').toContain('updateIncident:1:null:alice:null'));
    expect(host.incidentList[0]!.owner, 'and is the incident\'s').toBe('alice');
  });

  it('checks the address to block as typed and enables the block only for an address', async () => {
    const host = await withIncident();
    await host.updateIncident(1, null, null, 'containment');
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Block an address…' }));
    const dialog = await screen.findByRole('dialog');
    expect(document.activeElement?.textContent, 'with an address already there, the focus is on Cancel: Enter does not block').toBe('Cancel');
    const address = within(dialog).getByRole('textbox', { name: 'Address' });
    await fireEvent.input(address, { target: { value: 'attacker.example' } });
    expect(within(dialog).getByTestId('address-problem').textContent, 'what is wrong, before anything is confirmed').toMatch(/not an IP address/);
    const go = within(dialog).getByRole('button', { name: 'Block an address' }) as HTMLButtonElement;
    expect(go.disabled, 'no block of something that is not an address').toBe(true);
    await fireEvent.input(address, { target: { value: '2001:db8::7/64' } });
    expect(within(dialog).getByTestId('address-problem').textContent, 'a network is named as one').toMatch(/not a network/);
    await fireEvent.input(address, { target: { value: '2001:db8::7' } });
    const ready = within(dialog).getByRole('button', { name: 'Block 2001:db8::7 on sekha-prod' }) as HTMLButtonElement;
    expect(ready.disabled, 'an IPv6 address can be blocked').toBe(false);
    expect(dialog.textContent, 'with its impact named').toMatch(/lifts by itself/);
    await fireEvent.click(ready);
    await waitFor(() => expect(host.calls, 'the address typed goes to the host').toContain('incidentBlock:1:sekha-prod:2001:db8::7:3600'));
  });

  it('blocks only after a confirmation that names the target and impact, and logs the verified result', async () => {
    const host = await withIncident();
    await host.updateIncident(1, null, null, 'containment');
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Block an address…' }));
    const dialog = await screen.findByRole('dialog');
    expect(dialog.textContent, 'names the address and the host').toContain('203.0.113.7');
    expect(dialog.textContent, 'and the impact').toMatch(/lifts by itself/);
    expect(host.calls.some((c) => c.startsWith('incidentBlock')), 'nothing happens before the confirmation').toBe(false);
    await fireEvent.click(within(dialog).getByRole('button', { name: /^Block 203\.0\.113\.7/ }));
    await waitFor(() => expect(host.calls, 'the confirmed block goes to the host').toContain('incidentBlock:1:sekha-prod:203.0.113.7:3600'));
    const log = await screen.findByTestId('incident-log');
    await waitFor(() => expect(log.textContent, 'the verified result is in the log').toContain('Verified'));
  });

  it('says why a refused block failed and keeps it in the log', async () => {
    const host = await withIncident();
    host.blockRefused = '10.0.0.5 is the address the console connects from: blocking it would cut the console off this host';
    await host.updateIncident(1, null, null, 'containment');
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Block an address…' }));
    await fireEvent.click(within(await screen.findByRole('dialog')).getByRole('button', { name: /^Block/ }));
    expect((await screen.findByRole('alert')).textContent, 'the reason is shown').toContain('console connects from');
    await waitFor(() => expect(screen.getByTestId('incident-log').textContent, 'the refused block is logged as not done').toContain('Not done'));
  });

  it('asks a second time before blocking an address a client may have forged', async () => {
    const host = await withIncident();
    host.spoofableAddresses = ['203.0.113.7'];
    await host.updateIncident(1, null, null, 'containment');
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Block an address…' }));
    await fireEvent.click(within(await screen.findByRole('dialog')).getByRole('button', { name: /^Block 203/ }));
    const again = await screen.findByRole('dialog', { name: 'Block an address that may be forged?' });
    expect(within(again).getByTestId('spoofable').textContent, 'the core says why').toContain('X-Forwarded-For');
    expect(host.calls.filter((c) => c.startsWith('incidentBlock')), 'the first click did not block').toEqual(['incidentBlock:1:sekha-prod:203.0.113.7:3600']);
    await fireEvent.click(within(again).getByRole('button', { name: /^Block anyway/ }));
    await waitFor(() => expect(host.calls, 'the second yes blocks').toContain('incidentBlock:1:sekha-prod:203.0.113.7:3600:confirmed'));
    await waitFor(() => expect(screen.queryByRole('dialog'), 'and the dialog closes').toBeNull());
  });

  it('opens the incident events in the timeline and records decisions', async () => {
    const host = await withIncident();
    const opened: TimelinePreset[] = [];
    render(Incidents, withHost(host, { ongo: () => {}, onopen: (p: TimelinePreset) => opened.push(p), focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(within(detail).getByRole('button', { name: 'Show the events' }));
    expect(opened[0]?.filter.ip, 'the timeline shows the incident address').toBe('203.0.113.7');
    await fireEvent.input(within(detail).getByLabelText('Note or decision'), { target: { value: 'block for an hour' } });
    await fireEvent.click(within(detail).getByRole('button', { name: 'Record decision' }));
    await waitFor(() => expect(host.calls, 'the decision goes to the log').toContain('incidentNote:1:true:block for an hour'));
    await fireEvent.click(within(detail).getByRole('button', { name: 'Mark contained' }));
    await waitFor(() => expect(within(detail).getByText('Contained'), 'the new status is shown').toBeTruthy());
  });

  it('restores a snapshot only after choosing it and confirming, and logs the safety snapshot', async () => {
    const host = await withIncident();
    await host.updateIncident(1, null, null, 'recovery');
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await fireEvent.click(await within(detail).findByRole('button', { name: 'Restore a snapshot…' }));
    await waitFor(() => expect(host.calls, 'the target\'s snapshots are listed first').toContain('snapshots:sekha-prod'));
    expect(await within(detail).findByLabelText('Snapshot'), 'the snapshots to choose from').toBeTruthy();
    await fireEvent.click(within(detail).getByRole('button', { name: 'Restore a snapshot…' }));
    const dialog = await screen.findByRole('dialog');
    expect(dialog.textContent, 'the impact, and that it can be undone').toMatch(/safety snapshot/);
    await fireEvent.click(within(dialog).getByRole('button', { name: /^Restore 2026/ }));
    await waitFor(() => expect(host.calls, 'the chosen snapshot is restored once confirmed').toContain('incidentRestore:1:sekha-prod:20261123T090000Z-snapshot.sqlite3'));
    await waitFor(() => expect(screen.getByTestId('incident-log').textContent, 'the log names the safety snapshot taken first').toContain('safety snapshot'));
  });

  it('explains how to start when there is none', async () => {
    render(Incidents, withHost(fakeHost(), { ongo: () => {}, onopen: () => {} }));
    expect(await screen.findByText('No incidents'), 'the empty state says how to start').toBeTruthy();
  });
});

describe('text from hosts in incidents', () => {
  it('shows the title, the log and the writes with visible escapes', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    await host.openIncident({ origin: 'hand', title: `Failed sign-ins from ${HOSTILE}`, severity: 'high', instances: ['sekha-prod'], ips: ['203.0.113.7'], from_us: 1, to_us: 2 });
    await host.incidentNote(1, false, `user agent ${HOSTILE}`);
    render(Incidents, withHost(host, { ongo: () => {}, onopen: () => {}, focusIncident: 1 }));
    const detail = await screen.findByRole('region', { name: 'Incident 1' });
    await waitFor(() => expect(detail.textContent, 'the title, escaped').toContain(`Failed sign-ins from ${HOSTILE_SHOWN}`));
    expect(screen.getByTestId('incident-log').textContent, 'the note, escaped').toContain(`user agent ${HOSTILE_SHOWN}`);
    expect(holdsHidden(document.body.textContent), 'nothing hidden anywhere in the view').toBe(false);
  });
});
