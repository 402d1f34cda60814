import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import App from '../App.svelte';
import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleAlert, sampleEvent, sampleInstance, sampleOffender, withHost } from '../fakes';
import type { TimelinePreset } from '../lib/preset';
import Heatmaps from './Heatmaps.svelte';

afterEach(cleanup);

function withFleet() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod')];
  return host;
}

describe('heatmaps', () => {
  it('shows the core-drawn chart as an image with a target per cell', async () => {
    const host = withFleet();
    render(Heatmaps, withHost(host, { theme: 'dark', onopen: () => {}, ongo: () => {} }));
    const img = await screen.findByRole('img');
    expect(img.getAttribute('src'), 'the SVG is an image, never inserted markup').toMatch(/^data:image\/svg\+xml/);
    expect(img.getAttribute('alt'), 'the alt text carries the title and window').toContain('Failed sign-ins by weekday and hour');
    expect(host.heatmapQueries[0]?.theme, 'drawn in the current theme').toBe('dark');
    const cells = within(screen.getByTestId('heatmap-cells')).getAllByRole('button');
    expect(cells.length, 'one target per cell of 7 x 24').toBe(168);
  });

  it('draws on a log scale by default and proportionally when asked', async () => {
    const host = withFleet();
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await screen.findByRole('img');
    expect(host.heatmapQueries.at(-1)?.scale, 'a log scale keeps a few failures visible beside a brute force').toBe('log');
    await fireEvent.change(screen.getByLabelText('Colours'), { target: { value: 'linear' } });
    await waitFor(() => expect(host.heatmapQueries.at(-1)?.scale, 'the chart is drawn again on the chosen scale').toBe('linear'));
  });

  it('opens exactly a cell\'s events in the timeline, from the mouse or the keyboard', async () => {
    const host = withFleet();
    const opened: TimelinePreset[] = [];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: (p: TimelinePreset) => opened.push(p), ongo: () => {} }));
    const grid = await screen.findByTestId('heatmap-cells');
    const busy = within(grid).getByRole('button', { name: 'Mon 14:00: 40 failed sign-ins' });
    await fireEvent.mouseEnter(busy);
    expect(screen.getByText(/40 failed sign-ins/, { selector: 'figcaption' }), 'hovering shows the count').toBeTruthy();
    await fireEvent.click(busy);
    expect(opened[0]?.filter.hours, 'the cell\'s own hours').toEqual([14]);
    expect(opened[0]?.filter.attempts, 'counted failed sign-ins only').toBe(true);
    // Keyboard: from the first cell, 14 steps right and Enter (a button's click).
    const first = within(grid).getAllByRole('button')[0]!;
    first.focus();
    for (let i = 0; i < 14; i++) await fireEvent.keyDown(grid, { key: 'ArrowRight' });
    expect(document.activeElement, 'the arrow keys move the focus along the row').toBe(busy);
    await fireEvent.keyDown(grid, { key: 'ArrowDown' });
    expect(document.activeElement?.getAttribute('aria-label'), 'down moves to the next weekday').toBe('Tue 14:00: 0 failed sign-ins');
  });

  it('lists offenders with what they did and explains what blocking needs', async () => {
    const host = withFleet();
    host.offenderList = [
      sampleOffender('203.0.113.7'),
      sampleOffender('198.51.100.4', { failures: 7, distinct_keys: 5, key_prefixes: ['aaaa', 'bbbb'], allowlisted: true, open_alerts: 0, direction: 'falling', spoofable: true }),
    ];
    const opened: TimelinePreset[] = [];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: (p: TimelinePreset) => opened.push(p), ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows[0]!.textContent, 'the offender with the most failures comes first').toContain('203.0.113.7');
    expect(rows[0]!.textContent, 'status in words').toContain('1 open alert');
    expect(rows[1]!.textContent, 'an allowlisted address says so').toContain('Allowlisted');
    expect(rows[1]!.textContent, 'an address known only from X-Forwarded-For says it may be forged').toContain('may be forged');
    expect(rows[0]!.textContent, 'one the proxy saw does not').not.toContain('may be forged');
    await fireEvent.click(within(table).getByRole('button', { name: 'Keys tried' }));
    expect(within(table).getAllByRole('row')[1]!.textContent, 'sorted by keys tried').toContain('198.51.100.4');
    await fireEvent.click(within(rows[0]!).getByRole('button', { name: 'Events' }));
    expect(opened[0]?.filter.ip, 'Events shows everything from that address').toBe('203.0.113.7');
  });

  it('starts an incident about an offender with its address and instances', async () => {
    const host = withFleet();
    host.offenderList = [sampleOffender('203.0.113.7')];
    const shown: number[] = [];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {}, onincident: (id: number) => shown.push(id) }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    await fireEvent.click(within(table).getByRole('button', { name: 'Incident…' }));
    await waitFor(() => expect(shown, 'the new incident is shown').toEqual([1]));
    expect(host.incidentList[0]!.ips, 'about the offender').toEqual(['203.0.113.7']);
    expect(host.incidentList[0]!.source, 'and it says it was opened from the offenders list, not by hand').toBe('from the offenders list (203.0.113.7)');
  });

  it('acknowledges and resolves alerts', async () => {
    const host = withFleet();
    host.alertList = [sampleAlert(3)];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    const list = await screen.findByTestId('alerts');
    expect(list.textContent, 'the alert says what happened').toContain('12 failed sign-ins from 203.0.113.7');
    await fireEvent.click(within(list).getByRole('button', { name: 'Acknowledge' }));
    await waitFor(() => expect(list.textContent, 'an acknowledged alert says so').toContain('Acknowledged'));
    await fireEvent.click(within(list).getByRole('button', { name: 'Resolve' }));
    expect(host.calls, 'resolving reaches the host').toContain('setAlertState:3:resolved');
  });
});

describe('offenders', () => {
  it('say "1–100 of 157", with the total on the badge, and page through the rest', async () => {
    const host = withFleet();
    host.offenderList = Array.from({ length: 157 }, (_, i) => sampleOffender(`203.0.${Math.floor(i / 100)}.${i % 100}`, { failures: 300 - i }));
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    const tab = await screen.findByTestId('tab-offenders');
    await waitFor(() => expect(tab.textContent?.replace(/\s+/g, ' ').trim(), 'the badge counts every offender, not the page').toBe('Offenders 157'));
    await fireEvent.click(tab);
    const count = await screen.findByTestId('offenders-count');
    expect(count.textContent?.replace(/\s+/g, ' '), 'the list says which of how many it shows').toMatch(/1–100 of 157 addresses/);
    const table = screen.getByTestId('offenders');
    expect(within(table).getAllByRole('row').length - 1, 'a page of 100').toBe(100);
    expect((screen.getByRole('button', { name: /Previous 100/ }) as HTMLButtonElement).disabled, 'nothing before the first page').toBe(true);
    await fireEvent.click(screen.getByRole('button', { name: /Next 100/ }));
    await waitFor(() => expect(count.textContent?.replace(/\s+/g, ' '), 'the second page').toMatch(/101–157 of 157 addresses/));
    expect(within(table).getAllByRole('row').length - 1, 'holds the other 57').toBe(57);
    expect((screen.getByRole('button', { name: /Next 100/ }) as HTMLButtonElement).disabled, 'and is the last').toBe(true);
  });

  it('count plainly when the list is below the limit', async () => {
    const host = withFleet();
    host.offenderList = [sampleOffender('203.0.113.7'), sampleOffender('203.0.113.8')];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    const tab = await screen.findByTestId('tab-offenders');
    await waitFor(() => expect(tab.textContent?.replace(/\s+/g, ' ').trim(), 'two is all there is').toBe('Offenders 2'));
  });

  it('are found by part of their address, IPv6 too, in any case, on every page', async () => {
    const host = withFleet();
    host.offenderList = [sampleOffender('203.0.113.7'), sampleOffender('198.51.100.4', { failures: 90 }), sampleOffender('2001:DB8::1', { failures: 80 })];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    const search = screen.getByRole('searchbox', { name: 'Find an address' });
    await fireEvent.input(search, { target: { value: '51.100' } });
    expect(within(table).getAllByRole('row').slice(1).map((r) => r.querySelector('td')?.textContent), 'the page narrows at once').toEqual(['198.51.100.4']);
    await waitFor(() => expect(screen.getByTestId('offenders-count').textContent, 'then the host counts every address that contains it').toMatch(/1 address containing “51\.100” failed/));
    await fireEvent.input(search, { target: { value: '2001:db8' } });
    await waitFor(() => expect(within(table).getAllByRole('row').length - 1, 'IPv6, whatever the case it was written in').toBe(1));
  });

  it('are searched beyond the page shown', async () => {
    const host = withFleet();
    host.offenderList = Array.from({ length: 157 }, (_, i) => sampleOffender(`198.51.100.${i + 1}`, { failures: 500 - i }));
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    await waitFor(() => expect(within(table).getAllByRole('row').length - 1, 'the first page').toBe(100));
    await fireEvent.input(screen.getByRole('searchbox', { name: 'Find an address' }), { target: { value: '100.150' } });
    await waitFor(() =>
      expect(within(table).getAllByRole('row').slice(1).map((r) => r.querySelector('td')?.textContent), 'an address ranked 150th is found').toEqual(['198.51.100.150']),
    );
    expect(screen.getByTestId('offenders-count').textContent, 'counted alone').toMatch(/1 address containing “100\.150”/);
  });

  it('keep their actions on screen at 1280 px: first and last seen share a column, IPv6 breaks at colons', async () => {
    const host = withFleet();
    host.offenderList = [sampleOffender('2001:db8:85a3::8a2e:370:7334')];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    expect(within(table).getAllByRole('columnheader').length, 'eight columns, not nine: 1280 px holds them all').toBe(8);
    expect(within(table).getByRole('row', { name: /first / }), 'first seen is under last seen').toBeTruthy();
    expect(table.querySelectorAll('td.address wbr').length, 'an IPv6 address may break after each colon, never inside a group').toBe(7);
  });
});

describe('acknowledging every new alert', () => {
  it('asks first, naming how many, then acknowledges exactly those', async () => {
    const host = withFleet();
    host.alertList = [sampleAlert(3), sampleAlert(2), sampleAlert(1, { state: 'acknowledged' })];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    await fireEvent.click(await screen.findByRole('button', { name: 'Acknowledge all 2 new…' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByRole('heading').textContent, 'the count is named').toBe('Acknowledge 2 new alerts?');
    expect(host.calls.some((c) => c.startsWith('setAlertState')), 'nothing changes before the confirmation').toBe(false);
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Acknowledge 2 alerts' }));
    await waitFor(() => expect(host.calls.filter((c) => c.startsWith('setAlert')), 'the two new ones, no other, in one call').toEqual(['setAlertsState:3,2:acknowledged']));
    expect(await screen.findByText('Acknowledged 2 of 2 alerts.'), 'and says it did').toBeTruthy();
  });

  it('is what the palette\'s intent opens, and Cancel leaves every alert as it was', async () => {
    const host = withFleet();
    host.alertList = [sampleAlert(2), sampleAlert(1)];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {}, intent: { kind: 'acknowledge-alerts' } }));
    const dialog = await screen.findByRole('dialog');
    expect(screen.getByTestId('tab-alerts').getAttribute('aria-selected'), 'on the Alerts tab').toBe('true');
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog'), 'the confirmation closes').toBeNull();
    expect(host.calls.some((c) => c.startsWith('setAlertState')), 'and nothing was acknowledged').toBe(false);
  });
});

describe('triage', () => {
  function triageHost() {
    const host = withFleet();
    host.alertList = [
      sampleAlert(4, { subject: '198.51.100.9', addresses: ['198.51.100.9'], instance: 'rae-lab' }),
      sampleAlert(3),
      sampleAlert(2),
      sampleAlert(1, { state: 'resolved' }),
    ];
    return host;
  }

  it('marks a selection in one step, and selects every alert from an address', async () => {
    const host = triageHost();
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    const alert3 = await screen.findByRole('checkbox', { name: 'Select alert #3' });
    const row3 = alert3.closest('li') as HTMLElement;
    await fireEvent.click(within(row3).getByRole('button', { name: 'Select all from this address' }));
    expect(screen.getByTestId('selection').textContent, 'both open alerts from 203.0.113.7, not the other address').toBe('2 selected');
    expect((screen.getByRole('checkbox', { name: 'Select alert #4' }) as HTMLInputElement).checked, 'the other address is left out').toBe(false);
    await fireEvent.click(screen.getByRole('checkbox', { name: 'Select alert #4' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Resolve 3' }));
    await waitFor(() => expect(host.calls, 'one call for the three').toContain('setAlertsState:4,3,2:resolved'));
    expect(await screen.findByText('Resolved 3 alerts.'), 'and it says so').toBeTruthy();
    expect(screen.queryByTestId('selection'), 'the selection is cleared').toBeNull();
  });

  it('never acknowledges a resolved alert back onto the list', async () => {
    const host = triageHost();
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    await fireEvent.click(await screen.findByRole('checkbox', { name: 'Show resolved alerts' }));
    await fireEvent.click(await screen.findByRole('checkbox', { name: 'Select alert #1' }));
    await fireEvent.click(screen.getByRole('checkbox', { name: 'Select alert #2' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Acknowledge 1' }));
    await waitFor(() => expect(host.calls, 'only the open one').toContain('setAlertsState:2:acknowledged'));
  });

  it('groups by instance with a heading per group', async () => {
    const host = triageHost();
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    await screen.findByRole('checkbox', { name: 'Select alert #3' });
    await fireEvent.change(screen.getByRole('combobox', { name: 'Show' }), { target: { value: 'instance' } });
    const headings = (await screen.findAllByRole('heading', { level: 3 })).map((h) => h.textContent?.trim());
    expect(headings, 'one heading per instance, with its count').toEqual(['rae-lab · 1', 'sekha-prod · 2']);
  });

  it('snoozes a rule on an instance only with a reason, lists it, and ends it', async () => {
    const host = triageHost();
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-alerts'));
    const row = (await screen.findByRole('checkbox', { name: 'Select alert #3' })).closest('li') as HTMLElement;
    await fireEvent.click(within(row).getByRole('button', { name: 'Snooze rule…' }));
    const dialog = await screen.findByRole('dialog');
    const go = within(dialog).getByRole('button', { name: 'Snooze Brute force' });
    expect((go as HTMLButtonElement).disabled, 'no snooze without a reason').toBe(true);
    await fireEvent.input(within(dialog).getByRole('textbox', { name: /Why/ }), { target: { value: 'pen test until Friday' } });
    await fireEvent.change(within(dialog).getByRole('combobox', { name: 'For' }), { target: { value: '8' } });
    await fireEvent.click(go);
    await waitFor(() => expect(host.calls, 'the rule, the instance, the hours and the reason').toContain('snoozeRule:brute-force:sekha-prod:8:pen test until Friday'));
    const list = await screen.findByTestId('snoozes');
    expect(list.textContent, 'the snooze is listed with its reason').toContain('pen test until Friday');
    await fireEvent.click(within(list).getByRole('button', { name: 'End snooze' }));
    await waitFor(() => expect(host.calls, 'ended by hand').toContain('unsnoozeRule:brute-force:sekha-prod'));
    await waitFor(() => expect(screen.queryByTestId('snoozes'), 'and no longer listed').toBeNull());
  });
});

describe('from the shell', () => {
  it('a cell click lands in the timeline with a clearable preset', async () => {
    const host = withFleet();
    host.timeline = [sampleEvent(2), sampleEvent(1, { kind: 'request', outcome: 'success' })];
    render(App, { host });
    await fireEvent.keyDown(window, { key: '3', ctrlKey: true });
    const grid = await screen.findByTestId('heatmap-cells');
    await fireEvent.click(within(grid).getByRole('button', { name: 'Mon 14:00: 40 failed sign-ins' }));
    const chip = await screen.findByTestId('timeline-preset');
    expect(chip.textContent, 'the chip names the cell').toContain('Mon 14:00');
    await waitFor(() => expect(host.lastFilter?.hours, 'the timeline asks for the cell\'s hour').toEqual([14]));
    expect(host.lastFilter?.attempts, 'the timeline asks for the counted failures').toBe(true);
    await fireEvent.click(within(chip).getByRole('button', { name: 'Clear and show all events' }));
    await waitFor(() => expect(host.lastFilter?.hours ?? null, 'clearing the chip asks for every event again').toBeNull());
  });

  it('a heatmap cell becomes an incident about exactly its hours', async () => {
    const host = withFleet();
    host.timeline = [sampleEvent(2)];
    render(App, { host });
    await fireEvent.keyDown(window, { key: '3', ctrlKey: true });
    const grid = await screen.findByTestId('heatmap-cells');
    await fireEvent.click(within(grid).getByRole('button', { name: 'Mon 14:00: 40 failed sign-ins' }));
    const chip = await screen.findByTestId('timeline-preset');
    await fireEvent.click(within(chip).getByRole('button', { name: 'Incident…' }));
    await waitFor(() => expect(screen.getByRole('heading', { level: 1 }).textContent, 'the incident is shown').toBe('Incidents'));
    const incident = host.incidentList[0]!;
    expect(incident.from_us, 'the window starts at the cell hour').toBe(14 * 3_600_000_000);
    expect(incident.to_us, 'and ends with it').toBe(15 * 3_600_000_000);
    expect(incident.instances.length, 'the cell covers every instance').toBe(host.fleet.length);
  });

  it('clicking an alert\'s desktop notification opens the alert', async () => {
    const host = withFleet();
    host.alertList = [sampleAlert(9)];
    render(App, { host });
    await waitFor(() => expect(host.calls, 'the shell waits for a notification click').toContain('nextOpenedAlert'));
    host.openAlert(9);
    await waitFor(() => expect(screen.getByRole('heading', { level: 1 }).textContent, 'the click opens the heatmaps view').toBe('Heatmaps'));
    const alert = await screen.findByText(/#9 Brute force/);
    await waitFor(() => expect(document.activeElement?.id, 'the alert has the focus').toBe('alert-9'));
    expect(alert, 'the alert is listed').toBeTruthy();
  });

  it('settings refuse a bad allowlist entry with the reason', async () => {
    const host = withFleet();
    render(App, { host });
    await fireEvent.keyDown(window, { key: '7', ctrlKey: true });
    const box = await screen.findByLabelText(/Allowlist/);
    await fireEvent.input(box, { target: { value: '10.0.0.0/8\nmy-laptop' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save rules' }));
    await screen.findByText(/"my-laptop" is not an address/);
    expect(host.detectionSettings.allowlist, 'nothing was saved').toEqual([]);
  });

  it('settings preview the rules and allowlist as edited over the stored month, saving nothing', async () => {
    const host = withFleet();
    render(App, { host });
    await fireEvent.keyDown(window, { key: '7', ctrlKey: true });
    const box = await screen.findByLabelText(/Allowlist/);
    await fireEvent.input(box, { target: { value: '198.51.100.0/24' } });
    await fireEvent.change(screen.getByLabelText('Brute force: on the host'), { target: { value: 'alert' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Preview over the last 30 days' }));
    const replay = await screen.findByTestId('replay');
    expect(host.calls, 'the edited allowlist is what is replayed').toContain('replayRules:1:198.51.100.0/24');
    expect(replay.textContent, 'what the allowlist entry would have kept quiet').toMatch(/198\.51\.100\.0\/24\s*14\s*1/);
    expect(host.calls, 'nothing is saved').not.toContain('setDetection');
  });
});

describe('text from hosts in heatmaps', () => {
  it('shows offenders\' keys and instances and alerts\' details with visible escapes', async () => {
    const host = withFleet();
    host.offenderList = [sampleOffender('203.0.113.7', { instances: [`sekha${HOSTILE}`], key_prefixes: [HOSTILE], distinct_keys: 1 })];
    host.alertList = [sampleAlert(1, { subject: HOSTILE, detail: `12 failed sign-ins with user agent ${HOSTILE}` })];
    render(Heatmaps, withHost(host, { theme: 'light', onopen: () => {}, ongo: () => {} }));
    await fireEvent.click(await screen.findByTestId('tab-offenders'));
    const table = await screen.findByTestId('offenders');
    expect(table.textContent, 'the instance, escaped').toContain(`sekha${HOSTILE_SHOWN}`);
    expect(holdsHidden(table.textContent), 'nothing hidden in the offenders').toBe(false);
    expect(holdsHidden(table.querySelector('[title]')?.getAttribute('title')), 'nor in the keys tried, on hover').toBe(false);
    await fireEvent.click(screen.getByTestId('tab-alerts'));
    const alerts = await screen.findByTestId('alerts');
    expect(alerts.textContent, 'the detail, escaped').toContain(`user agent ${HOSTILE_SHOWN}`);
    expect(holdsHidden(alerts.textContent), 'nothing hidden in the alerts').toBe(false);
  });
});
