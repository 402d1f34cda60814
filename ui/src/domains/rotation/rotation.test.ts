import { afterEach, describe, expect, it, vi } from 'vitest';

import { fakeHost, sampleCredential, sampleInstance } from '../../fakes';
import { calendarEnd, monthsToShow } from '../../lib/calendar';
import { dueWords, wholeDays } from './due';
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

/** `status_of` and `renewal_status` of crates/core/src/rotation.rs, transcribed: the status
 * line the core sends, which the Due column must agree with. */
function coreStatusText(now: number, due: number, certificate: boolean): string {
  const DAY = 86_400;
  const days = Math.floor((due - now) / DAY);
  if (certificate) {
    if (due + DAY < now) return `renewal overdue by ${Math.floor((now - due) / DAY)} days: check the agent is reachable`;
    if (due <= now) return 'renews at the next check';
    return `renews itself in ${days} day${days === 1 ? '' : 's'}`;
  }
  if (due <= now) return `overdue by ${-days} day${days === -1 ? '' : 's'}`;
  return `due in ${days} day${days === 1 ? '' : 's'}`;
}

const firstNumber = (text: string) => /\d+/.exec(text)?.[0] ?? null;

describe('the Due column', () => {
  const NOW = 1_795_000_000;
  const HOUR = 3600;
  const DAY = 86_400;
  const offsets = [-3 * DAY - HOUR, -DAY - 1, -DAY + 1, -1, 1, HOUR, DAY - 1, DAY, 7 * DAY + 12 * HOUR, 89 * DAY + 12 * HOUR, 90 * DAY, 200 * DAY + 5];

  it('counts whole days rounded down, as the core\'s status line does, for keys and the fleet CA', () => {
    for (const offset of offsets) {
      for (const kind of ['api_key', 'jwt_secret', 'fleet_ca'] as const) {
        const c = sampleCredential('k', 0, { kind, due_at: NOW + offset }, NOW);
        const core = coreStatusText(NOW, NOW + offset, false);
        const shown = dueWords(c, NOW);
        expect(firstNumber(shown) ?? '0', `${kind} due ${offset} s from now: "${shown}" agrees with "${core}"`).toBe(firstNumber(core));
        expect(shown.startsWith('overdue'), `overdue exactly when the core says so (${offset} s)`).toBe(core.startsWith('overdue'));
      }
    }
  });

  it('counts certificates as their renewal is counted', () => {
    for (const offset of offsets) {
      for (const kind of ['agent_certificate', 'client_certificate'] as const) {
        const c = sampleCredential('c', 0, { kind, due_at: NOW + offset }, NOW);
        const core = coreStatusText(NOW, NOW + offset, true);
        const shown = dueWords(c, NOW);
        if (core === 'renews at the next check') expect(shown, `${kind}, due ${offset} s ago`).toBe('at the next check');
        else expect(firstNumber(shown) ?? '0', `${kind} due ${offset} s from now: "${shown}" agrees with "${core}"`).toBe(firstNumber(core));
      }
    }
  });

  it('says "in 89 days" where a rounding clock would have said 90', () => {
    const c = sampleCredential('k', 0, { due_at: NOW + 89 * DAY + 12 * HOUR }, NOW);
    expect(dueWords(c, NOW), 'eighty-nine and a half days are 89 whole days').toBe('in 89 days');
    expect(wholeDays(NOW + 89 * DAY + 12 * HOUR, NOW), 'rounded down').toBe(89);
    expect(dueWords(sampleCredential('k', 0, { due_at: NOW + HOUR }, NOW), NOW), 'less than a day: the core\'s "0 days" in words').toBe('within a day');
    expect(dueWords(sampleCredential('k', 0, { due_at: null }, NOW), NOW), 'no due date').toBe('–');
  });

  it('counts from when the inventory was checked, the moment the status lines were written', async () => {
    const host = fakeHost();
    host.credentialList = [sampleCredential('k', 7)];
    const rotation = new RotationController(host);
    rotation.start();
    await vi.waitFor(() => expect(rotation.inventory, 'the inventory is read').not.toBeNull());
    expect(rotation.asOf, 'the inventory\'s checked_at').toBe(rotation.inventory!.checked_at);
    expect(rotation.grouped.map((g) => g.label), '"due in 7 days" is due within 7 days').toEqual(['Due within 7 days']);
  });
});

describe('how far the calendar reaches', () => {
  const NOW = new Date(2026, 10, 23, 12).getTime() / 1000;

  it('shows three months at least, and on to the month of the latest due date within a year', () => {
    expect(monthsToShow([], NOW), 'nothing due: this month and the next two').toBe(3);
    expect(monthsToShow([sampleCredential('k', 40, {}, NOW)], NOW), 'due in January: still three').toBe(3);
    expect(monthsToShow([sampleCredential('k', 120, {}, NOW)], NOW), 'due 23 March 2027: November to March').toBe(5);
    expect(monthsToShow([sampleCredential('k', 300, {}, NOW)], NOW), 'due in September 2027').toBe(11);
  });

  it('stops at twelve months: a CA due in ten years does not stretch it', () => {
    expect(monthsToShow([sampleCredential('ca', 3650, { kind: 'fleet_ca' }, NOW)], NOW), 'ten years on is left off').toBe(3);
    expect(monthsToShow([sampleCredential('k', 340, {}, NOW), sampleCredential('ca', 3650, {}, NOW)], NOW), 'the key within a year still counts').toBe(12);
    expect(calendarEnd(NOW, 3), 'three months from November end with February').toBe(new Date(2027, 1, 1).getTime() / 1000);
  });

  it('reaches a key due beyond three months, and names what falls due later still', async () => {
    const host = fakeHost();
    host.credentialList = [sampleCredential('k', 200), sampleCredential('fleet_ca', 3000, { kind: 'fleet_ca', instance: null })];
    const rotation = new RotationController(host);
    rotation.start();
    await vi.waitFor(() => expect(rotation.inventory, 'the inventory is read').not.toBeNull());
    const due = new Date(rotation.credentials[0]!.due_at! * 1000);
    const lastMonth = rotation.months[rotation.months.length - 1]!.days.find((d) => d !== null)!.key.slice(0, 7);
    expect(lastMonth, 'the calendar ends with the key\'s month').toBe(`${due.getFullYear()}-${String(due.getMonth() + 1).padStart(2, '0')}`);
    expect(rotation.beyondCalendar.map((c) => c.id), 'the CA is named as due after it').toEqual(['fleet_ca']);
  });

  it('is not stretched by certificates that renew themselves', async () => {
    const host = fakeHost();
    host.credentialList = [sampleCredential('sekha-prod/agent_certificate', 250, { kind: 'agent_certificate', status: 'ok' })];
    const rotation = new RotationController(host);
    rotation.start();
    await vi.waitFor(() => expect(rotation.inventory, 'the inventory is read').not.toBeNull());
    expect(rotation.months.length, 'the console renews it: nothing for the operator to plan').toBe(3);
  });
});
