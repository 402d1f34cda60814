import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { calendar, groupByDay } from '../lib/calendar';
import { nowDate, nowSeconds } from '../lib/clock';
import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleCredential, sampleInstance, withHost } from '../fakes';
import Rotation from './Rotation.svelte';

afterEach(cleanup);

function withCredentials() {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod'), sampleInstance('rae-prod', { profile: 'rae' })];
  host.credentialList = [
    sampleCredential('sekha-prod/api_key/mcp_api_key', -3),
    sampleCredential('rae-prod/api_key/API_KEY', 5, { instance: 'rae-prod', name: 'API_KEY', weak: true }),
    sampleCredential('sekha-prod/agent_certificate', 20, { kind: 'agent_certificate', name: 'agent certificate' }),
    sampleCredential('fleet_ca', 3000, { instance: null, kind: 'fleet_ca', name: 'fleet certificate authority' }),
  ];
  return host;
}

describe('rotation', () => {
  it('groups credentials by how soon they are due, overdue first', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    await waitFor(() => expect(screen.getAllByTestId('bucket').length, 'overdue, within a week, later, renewed automatically').toBe(4));
    const titles = screen.getAllByTestId('bucket').map((b) => b.querySelector('h2')?.textContent ?? '');
    expect(titles[0], 'overdue comes first').toMatch(/^Overdue/);
    expect(titles[1], 'then what is due within a week').toMatch(/^Due within 7 days/);
    const overdue = screen.getAllByTestId('bucket')[0]!;
    expect(overdue.textContent, 'with the words, not only a colour').toContain('overdue by 3 days');
    expect(screen.getByText('weak value'), 'weak keys are marked').toBeTruthy();
    expect(document.body.textContent, 'fingerprints, never values').toContain('9f86d081884c7d65');
    const history = await screen.findByTestId('rotation-history');
    expect(history.textContent, 'past rotations say who ran them and how they ended').toContain('alice');
    expect(history.textContent, 'and how it ended').toContain('committed');
  });

  it('shows the days things fall due on a calendar and filters by a day', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    const grid = await screen.findByRole('grid', { name: nowDate().toLocaleDateString(undefined, { month: 'long', year: 'numeric' }) });
    const due = await waitFor(() => {
      const days = within(grid).getAllByRole('button').filter((b) => /\d+ due/.test(b.getAttribute('aria-label') ?? ''));
      expect(days.length, 'some day on the calendar has something due').toBeGreaterThan(0);
      return days;
    });
    await fireEvent.click(due[0]!);
    expect(screen.getByRole('heading', { name: /Due on/ }), 'the list narrows to that day').toBeTruthy();
  });

  it('saves a rotation period per instance and refuses a silly one', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    const form = await screen.findByRole('form', { name: 'Rotation policy' });
    await waitFor(() => expect((within(form).getByLabelText('Instance') as HTMLSelectElement).value, 'the first instance is chosen once the list arrives').toBe('sekha-prod'));
    await fireEvent.input(within(form).getByRole('spinbutton'), { target: { value: '30' } });
    await fireEvent.click(within(form).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(host.calls, 'a period of 30 days is saved').toContain('setKeyRotationDays:sekha-prod:30'));
    await fireEvent.input(within(form).getByRole('spinbutton'), { target: { value: '5000' } });
    await fireEvent.click(within(form).getByRole('button', { name: 'Save' }));
    expect(host.calls, 'the form refuses a period beyond two years before asking the host').not.toContain(
      'setKeyRotationDays:sekha-prod:5000',
    );
  });
});

describe('the calendar', () => {
  it('starts weeks on Monday and puts overdue items on today', () => {
    const at = new Date(2026, 10, 23, 12).getTime() / 1000; // Monday 23 November 2026
    const [november] = calendar(at, 1);
    const leading = november!.days.findIndex((d) => d !== null);
    expect(leading, '1 November 2026 is a Sunday: six blank days before it').toBe(6);
    expect(november!.days.filter(Boolean).length, 'thirty days').toBe(30);
    const byDay = groupByDay([sampleCredential('a', -10, {}, at)], at);
    expect([...byDay.keys()], 'overdue shows on today').toEqual(['2026-11-23']);
  });
});

describe('rotating a key', () => {
  it('previews, rotates with progress, and copies the key without it reaching the window', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    await waitFor(() => expect(screen.getAllByTestId('bucket').length, 'the inventory is listed').toBe(4));
    const row = document.querySelector('[data-credential="sekha-prod/api_key/mcp_api_key"]') as HTMLElement;
    await fireEvent.click(within(row).getByRole('button', { name: 'Rotate…' }));
    const dialog = await screen.findByRole('dialog');
    await within(dialog).findByText(/cutting over at once/);
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Rotate mcp_api_key on sekha-prod' }));
    const result = await within(dialog).findByTestId('rotation-result');
    expect(result.textContent, 'the verified outcome is shown').toContain('Rotated and verified');
    expect(result.textContent, 'with what was proven').toContain('the old key is refused');
    await fireEvent.click(within(dialog).getByRole('button', { name: /Copy the new key/ }));
    await within(dialog).findByText(/on the clipboard for 30 seconds/);
    expect(host.calls, 'the rotation ran on the host').toContain('rotateKey:sekha-prod:mcp_api_key');
  });

  it('says why a rotation rolled back and that the old key works', async () => {
    const host = withCredentials();
    host.rotationFails = 'the service refuses the new key';
    render(Rotation, withHost(host, { ongo: () => {} }));
    await waitFor(() => expect(screen.getAllByTestId('bucket').length, 'the inventory is listed').toBe(4));
    const row = document.querySelector('[data-credential="sekha-prod/api_key/mcp_api_key"]') as HTMLElement;
    await fireEvent.click(within(row).getByRole('button', { name: 'Rotate…' }));
    const dialog = await screen.findByRole('dialog');
    await fireEvent.click(await within(dialog).findByRole('button', { name: 'Rotate mcp_api_key on sekha-prod' }));
    const result = await within(dialog).findByTestId('rotation-result');
    expect(result.textContent, 'the outcome says it rolled back').toContain('Rolled back');
    expect(result.textContent, 'and why').toContain('the service refuses the new key');
    expect(result.textContent, 'and that the service works as before').toContain('the old key works');
    expect(within(dialog).queryByRole('button', { name: /Copy the new key/ }), 'no key to copy').toBeNull();
  });
});

describe('rotating every due key', () => {
  it('asks for the scope to be typed, then summarises each outcome', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    const open = await screen.findByRole('button', { name: 'Rotate all due (2)…' });
    await fireEvent.click(open);
    const dialog = await screen.findByRole('dialog');
    const go = within(dialog).getByRole('button', { name: 'Rotate 2 keys' }) as HTMLButtonElement;
    expect(go.disabled, 'a fleet-wide action waits for the scope to be typed').toBe(true);
    await fireEvent.input(within(dialog).getByRole('textbox'), { target: { value: '2 keys' } });
    expect(go.disabled, 'typing the scope enables it').toBe(false);
    await fireEvent.click(go);
    const summary = await within(dialog).findByTestId('bulk-summary');
    expect(summary.textContent, 'the summary counts the verified rotations').toContain('2 of 2 rotated and verified');
    await fireEvent.click(within(dialog).getAllByRole('button', { name: 'Copy key' })[0]!);
    await within(dialog).findByText('copied');
    expect(host.calls, 'each key is copied by its label').toContain('copyRotatedKey:mcp_api_key on sekha-prod');
  });
});

describe('due dates', () => {
  it('agree with the status line to the day', async () => {
    const host = fakeHost();
    const now = Math.floor(nowSeconds());
    host.fleet = [sampleInstance('sekha-prod')];
    // Set 12 hours after a whole day: the core says "due in 89 days" (whole days, rounded down).
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', 89, { due_at: now + 89 * 86400 + 12 * 3600 }, now)];
    render(Rotation, withHost(host, { ongo: () => {} }));
    const due = await screen.findByTestId('due');
    const row = due.closest('tr')!;
    expect(row.textContent, 'the status line from the core').toContain('due in 89 days');
    expect(due.textContent, 'and the Due column, not "in 90 days"').toBe('in 89 days');
  });

  it('reach a key due beyond three months on the calendar', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', 150)];
    render(Rotation, withHost(host, { ongo: () => {} }));
    const at = new Date((Math.floor(nowSeconds()) + 150 * 86400) * 1000);
    const month = at.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
    const grid = await screen.findByRole('grid', { name: month });
    expect(within(grid).getAllByRole('button').some((b) => /1 due/.test(b.getAttribute('aria-label') ?? '')), `the key is on ${month}`).toBe(true);
    expect(screen.getByTestId('calendar').getAttribute('aria-label'), 'the calendar says how far it reaches').toMatch(new RegExp(`to ${month}$`));
  });
});

describe('the rotation forms\' layout', () => {
  it('keeps "Type 2 keys to confirm" one sentence above its field', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Rotate all due (2)…' }));
    const field = within(await screen.findByRole('dialog')).getByRole('textbox');
    const label = field.closest('label')!;
    expect([...label.children].map((c) => c.tagName), 'one line of words, then the field: not three flex items').toEqual(['SPAN', 'INPUT']);
    expect(label.children[0]!.textContent, 'the sentence whole').toBe('Type 2 keys to confirm');
  });

  it('keeps "days" beside the period\'s spinner', async () => {
    const host = withCredentials();
    render(Rotation, withHost(host, { ongo: () => {} }));
    const form = await screen.findByRole('form', { name: 'Rotation policy' });
    const spinner = within(form).getByRole('spinbutton');
    expect(spinner.parentElement?.tagName, 'the spinner and its unit share a line of their own').toBe('SPAN');
    expect(spinner.parentElement?.textContent?.trim(), 'which ends with the unit').toBe('days');
  });
});

describe('text from hosts in rotation', () => {
  it('shows where a key lives and what the agent reported with visible escapes', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.credentialList = [sampleCredential('sekha-prod/api_key/mcp_api_key', 40, { location: `/srv/sekha/${HOSTILE}.toml`, name: `KEY${HOSTILE}` })];
    render(Rotation, withHost(host, { ongo: () => {} }));
    const row = await waitFor(() => {
      const found = document.querySelector('[data-credential="sekha-prod/api_key/mcp_api_key"]');
      if (!found) throw new Error('not listed yet');
      return found;
    });
    expect(row.textContent, 'the location, escaped').toContain(`/srv/sekha/${HOSTILE_SHOWN}.toml`);
    expect(holdsHidden(row.textContent), 'nothing hidden in the row').toBe(false);
  });
});
