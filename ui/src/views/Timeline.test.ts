import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { fakeHost, holdsHidden, HOSTILE, HOSTILE_SHOWN, sampleEvent, sampleInstance, withHost } from '../fakes';
import Timeline from './Timeline.svelte';

afterEach(cleanup);

function withEvents(n: number) {
  const host = fakeHost();
  host.fleet = [sampleInstance('sekha-prod')];
  host.timeline = Array.from({ length: n }, (_, i) => sampleEvent(n - i, { ip: `203.0.113.${(n - i) % 250}` }));
  return host;
}

describe('the timeline', () => {
  it('shows events newest first, with words for kind and outcome', async () => {
    const host = withEvents(3);
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'every event is listed').toBe(3));
    const rows = within(list).getAllByRole('option');
    expect(rows[0]!.textContent, 'the newest event comes first').toContain('203.0.113.3');
    expect(rows[0]!.textContent, 'outcome as a word').toContain('failure');
  });

  it('renders only the visible rows of a long list', async () => {
    const host = withEvents(10_000);
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'the list shows rows').toBeGreaterThan(0));
    expect(within(list).getAllByRole('option').length, 'a window of rows, not all loaded').toBeLessThan(100);
  });

  it('shows the raw line as text, never as markup, and selects from the keyboard', async () => {
    const host = withEvents(2);
    host.raw['sekha-prod:2'] = '<img src=x id=injected> "POST /x" 401';
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'both events are listed').toBe(2));
    await fireEvent.keyDown(list, { key: 'ArrowDown' });
    const raw = await screen.findByTestId('raw-line');
    await waitFor(() => expect(raw.textContent, 'the raw line is shown as read on the host').toBe('<img src=x id=injected> "POST /x" 401'));
    expect(document.getElementById('injected'), 'host text never becomes an element').toBeNull();
    await fireEvent.keyDown(list, { key: 'Escape' });
    expect(screen.queryByTestId('raw-line'), 'Escape closes the detail').toBeNull();
  });

  it('passes filters to the host and exports what they select', async () => {
    const host = withEvents(5);
    render(Timeline, withHost(host, { ongo: () => {} }));
    await screen.findByTestId('timeline-list');
    await fireEvent.change(screen.getByLabelText('Kind'), { target: { value: 'auth' } });
    await fireEvent.input(screen.getByLabelText('Address'), { target: { value: '203.0.113.4' } });
    await waitFor(() => expect(host.lastFilter?.ip, 'the address filter reaches the host').toBe('203.0.113.4'));
    expect(host.lastFilter?.kind, 'and so does the kind').toBe('auth');
    await fireEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    await screen.findByText(/Saved 1 events to \/home\/op\/Downloads\/gatehouse-events.csv/);
    expect(host.calls, 'the export is asked of the host').toContain('exportEvents:csv');
  });

  it('explains itself when no instance is enrolled', async () => {
    render(Timeline, withHost(fakeHost(), { ongo: () => {} }));
    await screen.findByText('Nothing has happened yet');
  });
});

describe('live mode', () => {
  it('shows history an agent backfills below the top, not only newer events', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.timeline = [sampleEvent(100, { kind: 'console', outcome: 'success', message: 'Enrolled', ip: null })];
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'the enrollment event is listed').toBe(1));
    // The agent reads its log from the start: older lines arrive after the enrollment.
    host.timeline = [...host.timeline, sampleEvent(3), sampleEvent(2), sampleEvent(1)];
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'the backfilled events are listed too').toBe(4), { timeout: 5000 });
  });
});

describe('text from hosts', () => {
  it('shows bidi and control characters in a row and its detail as visible escapes', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.timeline = [sampleEvent(1, { path: `/mcp/${HOSTILE}`, key_prefix: 'wrong_', actor: HOSTILE })];
    host.raw['sekha-prod:1'] = `203.0.113.7 "POST /mcp/${HOSTILE}" 401`;
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    const row = await within(list).findByRole('option');
    expect(row.textContent, 'the override is named where it was').toContain(`/mcp/${HOSTILE_SHOWN}`);
    expect(holdsHidden(row.textContent), 'nothing in the row can reverse "key" after it').toBe(false);
    expect(row.textContent, 'the console\'s own label reads as written').toContain(' · key wrong_…');
    await fireEvent.click(row);
    const raw = await screen.findByTestId('raw-line');
    await waitFor(() => expect(raw.textContent, 'the raw line, escaped').toBe(`203.0.113.7 "POST /mcp/${HOSTILE_SHOWN}" 401`));
    const detail = screen.getByRole('complementary', { name: 'Event detail' });
    expect(holdsHidden(detail.textContent), 'nor anything in the detail').toBe(false);
    expect(within(detail).getByTestId('hidden-characters').textContent, 'the detail says why the escapes are there').toMatch(/could hide or reorder/);
  });
});

describe('a time range of the operator\'s own', () => {
  /** Events a minute apart from 08:00 to 08:59 local time on the pinned day. */
  function hourOfEvents() {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.timeline = Array.from({ length: 60 }, (_, i) => sampleEvent(60 - i, { time_us: new Date(2026, 10, 23, 8, 59 - i).getTime() * 1000 }));
    return host;
  }

  it('passes From and To, typed in local time, to the host and says what it shows', async () => {
    const host = hourOfEvents();
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await fireEvent.input(screen.getByLabelText('From'), { target: { value: '2026-11-23 08:10' } });
    await fireEvent.input(screen.getByLabelText('To'), { target: { value: '2026-11-23 08:20' } });
    await waitFor(() => expect(host.lastFilter?.from_us, 'From, in microseconds, inclusive').toBe(new Date(2026, 10, 23, 8, 10).getTime() * 1000));
    expect(host.lastFilter?.to_us, 'To, exclusive').toBe(new Date(2026, 10, 23, 8, 20).getTime() * 1000);
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'the ten minutes from 08:10 up to 08:20').toBe(10));
    expect((screen.getByLabelText('Time') as HTMLSelectElement).value, 'the range list says From and To replaced it').toBe('custom');
    expect(document.getElementById('timeline-range')?.textContent, 'what is shown, in words with the year').toMatch(/from .*2026.*08:10.* to just before .*08:20/s);
  });

  it('refuses To before From as typed and keeps the list as it was', async () => {
    const host = hourOfEvents();
    render(Timeline, withHost(host, { ongo: () => {} }));
    await screen.findByTestId('timeline-list');
    await fireEvent.input(screen.getByLabelText('From'), { target: { value: '2026-11-23 08:30' } });
    await waitFor(() => expect(host.lastFilter?.from_us, 'From alone is a range from then on').toBe(new Date(2026, 10, 23, 8, 30).getTime() * 1000));
    const asked = host.calls.filter((c) => c === 'events').length;
    await fireEvent.input(screen.getByLabelText('To'), { target: { value: '2026-11-23 08:00' } });
    expect(document.getElementById('timeline-range')?.textContent, 'the reason, as typed').toContain('To must be after From.');
    expect(screen.getByLabelText('To').getAttribute('aria-invalid'), 'the field is marked').toBe('true');
    await new Promise((r) => setTimeout(r, 400));
    expect(host.calls.filter((c) => c === 'events').length, 'nothing is asked with a range that cannot be').toBe(asked);
    await fireEvent.input(screen.getByLabelText('To'), { target: { value: '2026-11-23 08:6' } });
    expect(document.getElementById('timeline-range')?.textContent, 'a half-typed time says how to write it').toMatch(/To: write it as year-month-day hour:minute/);
  });

  it('clears From and To with one button, back to the chosen range', async () => {
    const host = hourOfEvents();
    render(Timeline, withHost(host, { ongo: () => {} }));
    await screen.findByTestId('timeline-list');
    await fireEvent.input(screen.getByLabelText('From'), { target: { value: '2026-11-23 08:50' } });
    await waitFor(() => expect(host.lastFilter?.from_us, 'the typed range is used').toBe(new Date(2026, 10, 23, 8, 50).getTime() * 1000));
    await fireEvent.click(screen.getByRole('button', { name: 'Clear From and To' }));
    expect((screen.getByLabelText('From') as HTMLInputElement).value, 'From is empty').toBe('');
    await waitFor(() => expect(host.lastFilter?.from_us, 'the last 24 hours again').toBeLessThan(new Date(2026, 10, 22, 12, 1).getTime() * 1000));
    expect((screen.getByLabelText('Time') as HTMLSelectElement).value, 'as the range list says').toBe('24h');
  });
});

describe('event dates', () => {
  it('show the year of an event that is not from the current year', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('sekha-prod')];
    host.timeline = [sampleEvent(1, { time_us: new Date(2099, 10, 23, 9, 0).getTime() * 1000 })];
    const timeline = render(Timeline, withHost(host, { ongo: () => {} }));
    await fireEvent.change(screen.getByLabelText('Time'), { target: { value: 'all' } });
    const row = await within(await screen.findByTestId('timeline-list')).findByRole('option');
    expect(row.textContent, 'a line dated 2099 says 2099 (the clock is pinned in 2026)').toContain('2099');
    expect(timeline.container.querySelector('.list.years'), 'the time column widens for the year').not.toBeNull();
  });
});

describe('a raw line that is not there', () => {
  it('says the raw line is empty or was not kept instead of loading forever', async () => {
    const host = withEvents(2);
    host.raw['sekha-prod:2'] = '';
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'both events are listed').toBe(2));
    await fireEvent.click(within(list).getAllByRole('option')[0]!);
    await waitFor(() => expect(screen.getByTestId('raw-line').textContent, 'an empty line is called empty').toMatch(/^The raw line is empty/));
    await fireEvent.click(within(list).getAllByRole('option')[1]!);
    await waitFor(() => expect(screen.getByTestId('raw-line').textContent, 'no line at all (null) is not kept').toMatch(/not keep it/));
    expect(screen.getByTestId('raw-line').textContent, 'neither is "Loading…"').not.toContain('Loading');
  });
});

describe('the client of an access line', () => {
  it('shows the user agent and referer of an nginx combined line, escaped, and nothing for other lines', async () => {
    const host = withEvents(2);
    host.raw['sekha-prod:2'] = `203.0.113.2 - - [23/Nov/2026:08:00:02 +0000] "POST /mcp/x HTTP/1.1" 401 35 "https://ref.example/${HOSTILE}" "curl/8.5.0 ${HOSTILE}"`;
    host.raw['sekha-prod:1'] = 'INFO:     127.0.0.1:58196 - "GET /health HTTP/1.1" 200 OK';
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'both events are listed').toBe(2));
    await fireEvent.click(within(list).getAllByRole('option')[0]!);
    const agent = await screen.findByTestId('user-agent');
    expect(agent.textContent, 'the user agent, the last quoted field, with its hidden characters as escapes').toBe(`curl/8.5.0 ${HOSTILE_SHOWN}`);
    expect(screen.getByTestId('referer').textContent, 'the referer, the field before it, escaped too').toBe(`https://ref.example/${HOSTILE_SHOWN}`);
    const detail = screen.getByRole('complementary', { name: 'Event detail' });
    expect(holdsHidden(detail.textContent), 'nothing the client wrote can reorder the detail').toBe(false);
    await fireEvent.click(within(list).getAllByRole('option')[1]!);
    await waitFor(() => expect(screen.getByTestId('raw-line').textContent, 'the other event\'s raw line is shown').toContain('INFO:'));
    expect(screen.queryByTestId('user-agent'), 'a line of another format has no user agent to show').toBeNull();
    expect(screen.queryByTestId('referer'), 'nor a referer').toBeNull();
  });
});

describe('one request logged several times', () => {
  it('is one row naming its sources, and its detail lists every line', async () => {
    const host = fakeHost();
    host.fleet = [sampleInstance('jelmore-1')];
    const at = (sampleEvent(1).time_us / 1e6) * 1e6;
    const base = { instance: 'jelmore-1', ip: '203.0.113.9', path: '/api/v1/v1/sessions', method: 'POST' };
    host.timeline = [
      sampleEvent(4, { ...base, source: 'proxy', kind: 'request', outcome: 'success', status: 200, ip: '198.51.100.4', time_us: at + 9_000_000 }),
      sampleEvent(3, { ...base, source: 'service', status: 401, message: 'Request completed', time_us: at + 4_000 }),
      sampleEvent(2, { ...base, source: 'service', status: null, message: 'Invalid API key', time_us: at + 3_000 }),
      sampleEvent(1, { ...base, source: 'proxy', status: 401, time_us: at }),
    ];
    render(Timeline, withHost(host, { ongo: () => {} }));
    const list = await screen.findByTestId('timeline-list');
    await waitFor(() => expect(within(list).getAllByRole('option').length, 'two requests, two rows (not four lines)').toBe(2));
    const row = within(list).getAllByRole('option')[1]!;
    expect(row.textContent, 'led by the proxy line, with how many more lines it has').toMatch(/proxy\s*\+2/);
    await fireEvent.click(row);
    const parts = await screen.findByTestId('request-parts');
    expect(
      within(parts)
        .getAllByRole('listitem')
        .map((li) => li.textContent?.replace(/\s+/g, ' ').trim()),
      'every line of the request, newest first',
    ).toEqual(['service auth 401: Request completed', 'service auth: Invalid API key', 'proxy auth 401']);
  });
});
