import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleItem, withHost } from '../fakes';
import Compliance from './Compliance.svelte';

afterEach(cleanup);

function withItems() {
  const host = fakeHost();
  host.items = [
    sampleItem('pre.file-permissions', {
      text: 'Set file permissions (600 for configs)',
      state: 'fail',
      reopened: true,
      state_text: 'not mode 0600 for the service user: config.toml (0644)',
      checks: [
        {
          check: 'config_file_mode',
          status: 'fail',
          summary: 'not mode 0600 for the service user: config.toml (0644)',
          evidence: ['/srv/sekha/config.toml: mode 0644, owner uid 998'],
          checked_at: 1_795_401_600,
          fixes: [],
        },
      ],
    }),
    sampleItem('pre.strong-key', { text: 'Generate strong API key (32+ characters)' }),
    sampleItem('post.backup-restore', {
      section: 'Post-deployment',
      text: 'Test backup restoration',
      automated: false,
      state: 'due',
      state_text: 'not done yet',
    }),
    sampleItem('probe.cors', { instance: 'rae-prod', section: 'What the running service shows', text: 'CORS does not answer any origin', state: 'waived', state_text: 'waived as accepted risk' }),
  ];
  return host;
}

describe('compliance', () => {
  it('shows scorecards and items with a word for every state, grouped by section', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    const cards = await screen.findByRole('table', { name: 'Scorecards' });
    expect(within(cards).getByText('sekha-prod'), 'one scorecard row per instance').toBeTruthy();
    const sekha = within(cards).getByText('sekha-prod').closest('tr')!;
    expect(sekha.textContent, '1 of the 3 sekha items not waived passes').toContain('33%');
    const rae = within(cards).getByText('rae-prod').closest('tr')!;
    expect(rae.textContent, 'an instance whose only item is waived is not marked down').toContain('100%');
    expect(screen.getByRole('heading', { name: 'Pre-deployment' }), 'items sit under their guide section').toBeTruthy();
    const failing = document.querySelector('[data-item="pre.file-permissions"]')!;
    expect(failing.textContent, 'a failing item says Fail in words').toContain('Fail');
    expect(failing.textContent, 'and that it re-opened').toContain('re-opened');
    expect(screen.getAllByText('Waived').length, 'waived items are marked as such').toBeGreaterThan(0);
  });

  it('filters to failing items', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(screen.getByRole('radio', { name: 'Failing' }));
    await waitFor(() => expect(host.calls, 'the filter is asked of the host').toContain('compliance:failing'));
    await waitFor(() => expect(document.querySelector('[data-item="pre.strong-key"]'), 'passing items are hidden').toBeNull());
    expect(document.querySelector('[data-item="pre.file-permissions"]'), 'failing ones stay').toBeTruthy();
  });

  it('opens an item with its evidence and signs off a manual one', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(document.querySelector('[data-item="pre.file-permissions"]')!);
    const detail = await screen.findByRole('complementary', { name: 'Item details' });
    expect(detail.textContent, 'the evidence a person can read').toContain('mode 0644');
    expect(within(detail).queryByRole('form', { name: 'Sign off' }), 'automated items are not signed off by hand').toBeNull();

    await fireEvent.click(document.querySelector('[data-item="post.backup-restore"]')!);
    const form = await screen.findByRole('form', { name: 'Sign off' });
    await fireEvent.input(within(form).getByRole('textbox'), { target: { value: 'restored last night' } });
    await fireEvent.click(within(form).getByRole('button', { name: 'Sign off as done' }));
    await waitFor(() => expect(host.calls, 'the sign-off goes to the host with its note').toContain('signOffItem:sekha-prod:post.backup-restore:restored last night'));
    await waitFor(() => expect(document.querySelector('[data-item="post.backup-restore"]')!.textContent, 'the item reads Done').toContain('Done'));
  });

  it('says why a waiver was refused and keeps the form', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(document.querySelector('[data-item="pre.strong-key"]')!);
    const form = await screen.findByRole('form', { name: 'Waive' });
    await fireEvent.click(within(form).getByRole('button', { name: 'Waive' }));
    expect((await screen.findByRole('alert')).textContent, 'the reason is shown').toContain('say why');
    expect(host.items.find((i) => i.id === 'pre.strong-key')!.state, 'nothing was waived').toBe('pass');
  });

  it('runs the checks and exports the report', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(screen.getByRole('button', { name: 'Run checks now' }));
    await waitFor(() => expect(screen.getByText(/Ran 14 checks on 1 instance/), 'the run is summarised').toBeTruthy());
    await fireEvent.click(screen.getByRole('button', { name: 'Export HTML' }));
    await waitFor(() => expect(screen.getByText(/Report saved to .*gatehouse-compliance.html/), 'the report path is shown').toBeTruthy());
  });

  it('explains what to do with no instance', async () => {
    const host = fakeHost();
    render(Compliance, withHost(host, { ongo: () => {} }));
    expect(await screen.findByText('No checklists running yet'), 'the empty state says how to start').toBeTruthy();
  });
});

describe('opening an item', () => {
  it('keeps the chosen row where it was when the detail narrows the list', async () => {
    const host = withItems();
    const scroller = document.createElement('main');
    scroller.style.overflowY = 'auto';
    document.body.append(scroller);
    render(Compliance, { ...withHost(host, { ongo: () => {} }), target: scroller });
    await screen.findByRole('table', { name: 'Scorecards' });
    const row = document.querySelector<HTMLElement>('[data-item="pre.strong-key"]')!;
    // The detail opens beside the list: its rows wrap and this one slides 400 px down.
    let top = 409;
    row.getBoundingClientRect = () => ({ top, bottom: top + 40, left: 0, right: 600, width: 600, height: 40, x: 0, y: top, toJSON: () => ({}) });
    const observer = new MutationObserver(() => (top = document.querySelector('aside[aria-label="Item details"]') ? 809 : 409));
    observer.observe(scroller, { childList: true, subtree: true });
    scroller.scrollTop = 900;
    await fireEvent.click(row);
    await screen.findByRole('complementary', { name: 'Item details' });
    await waitFor(() => expect(scroller.scrollTop, 'scrolled with the row, which stays under the pointer').toBe(1300));
    observer.disconnect();
    scroller.remove();
  });
});

describe('dates', () => {
  it('are typed year-month-day and read back in the app\'s words, or say what is wrong', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(document.querySelector('[data-item="pre.strong-key"]')!);
    const form = await screen.findByRole('form', { name: 'Owner and due date' });
    const due = within(form).getByRole('textbox', { name: /^Due/ });
    expect(due.getAttribute('placeholder'), 'the form to type, not mm/dd/yyyy').toBe('YYYY-MM-DD');
    await fireEvent.input(due, { target: { value: '12/06/2026' } });
    const read = within(form).getByTestId('date-read');
    expect(read.textContent, 'an ambiguous date is refused, with how to write it').toMatch(/year-month-day, such as 2026-12-06/);
    expect((within(form).getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled, 'and cannot be saved').toBe(true);
    await fireEvent.input(due, { target: { value: '2026-12-06' } });
    expect(read.textContent?.trim(), 'the day it was read as, as the app writes dates').toMatch(/^Sun, Dec 6, 2026$/);
    await fireEvent.keyDown(due, { key: 'ArrowUp' });
    expect((due as HTMLInputElement).value, 'the up arrow moves it a day').toBe('2026-12-07');
    await fireEvent.click(within(form).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(host.calls, 'saved as the start of that UTC day').toContain(`assignItem:sekha-prod:pre.strong-key:null:${Date.UTC(2026, 11, 7) / 1000}`));
  });

  it('start a waiver 90 days on and refuse, as typed, an end the core would refuse', async () => {
    const host = withItems();
    render(Compliance, withHost(host, { ongo: () => {} }));
    await screen.findByRole('table', { name: 'Scorecards' });
    await fireEvent.click(document.querySelector('[data-item="pre.strong-key"]')!);
    const form = await screen.findByRole('form', { name: 'Waive' });
    const until = within(form).getByRole('textbox', { name: /^Until/ }) as HTMLInputElement;
    // The clock is pinned at noon on Monday 23 November 2026: 90 days on is 21 February 2027.
    expect(until.value, 'a quarter on, not today (which the core refuses)').toBe('2027-02-21');
    const waive = within(form).getByRole('button', { name: 'Waive' }) as HTMLButtonElement;
    expect(waive.disabled, 'a sensible end can be sent at once').toBe(false);
    await fireEvent.input(until, { target: { value: '2026-11-23' } });
    expect(within(form).getByTestId('date-read').textContent, 'today is refused as typed, with why').toMatch(/after today/);
    expect(waive.disabled, 'and cannot be sent').toBe(true);
    await fireEvent.input(until, { target: { value: '2029-01-01' } });
    expect(within(form).getByTestId('date-read').textContent, 'nor more than two years on').toMatch(/two years at most/);
    await fireEvent.input(until, { target: { value: '2027-03-01' } });
    await fireEvent.input(within(form).getByRole('textbox', { name: 'Reason' }), { target: { value: 'no public endpoint yet' } });
    await fireEvent.input(within(form).getByRole('textbox', { name: 'Approved by' }), { target: { value: 'bob' } });
    await fireEvent.click(waive);
    await waitFor(() => expect(host.items.find((i) => i.id === 'pre.strong-key')?.waiver?.expires_at, 'until the start of 1 March 2027, UTC').toBe(Date.UTC(2027, 2, 1) / 1000));
    expect(await screen.findByText(/until/, { selector: '.waiver p' }).then((p) => p.textContent), 'shown as the day, in the app\'s words').toMatch(/until Mon, Mar 1, 2027/);
  });
});

describe('text from hosts in compliance', () => {
  it('shows check evidence and item evidence with visible escapes', async () => {
    const host = fakeHost();
    host.items = [
      sampleItem('pre.file-permissions', {
        state: 'fail',
        checks: [{ check: 'config_file_mode', status: 'fail', summary: 'a file is readable by others', evidence: [`/srv/sekha/${HOSTILE}: mode 0644`], checked_at: 1_795_401_600, fixes: [] }],
        evidence: [{ id: 1, at: 1_795_401_600, actor: 'alice', kind: 'file', text: `/home/op/${HOSTILE}.pdf`, sha256: 'ab'.repeat(32), size: 10 }],
      }),
    ];
    render(Compliance, withHost(host, { ongo: () => {} }));
    await fireEvent.click(await screen.findByRole('button', { name: /Item pre.file-permissions/ }));
    const detail = await screen.findByRole('complementary', { name: 'Item details' });
    expect(detail.textContent, 'the check\'s evidence, escaped').toContain(`/srv/sekha/${HOSTILE_SHOWN}: mode 0644`);
    expect(detail.textContent, 'the attached evidence, escaped').toContain(`/home/op/${HOSTILE_SHOWN}.pdf`);
    expect(holdsHidden(detail.textContent), 'nothing hidden in the detail').toBe(false);
  });
});
