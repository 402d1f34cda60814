import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';

import { fakeHost, withHost } from '../fakes';
import type { Theme } from '../gen/Theme';
import Settings from './Settings.svelte';

afterEach(cleanup);

function renderSettings(host = fakeHost(), onthemechange: (theme: Theme) => Promise<void> = async () => {}) {
  render(Settings, withHost(host, { theme: 'system', onthemechange }));
  return host;
}

/** Settings read what they show when they open; wait for it before changing anything. */
async function loaded() {
  await screen.findByText('Heatmaps bucket hours and days in Europe/Berlin.');
}

describe('audit log', () => {
  it('lists actions and reports the first broken link in words', async () => {
    const host = fakeHost();
    host.audit = [{ id: 2, at_us: 1_795_401_600_000_000, actor: 'alice', action: 'console', target: 'sekha-prod', detail: 'Blocked 203.0.113.7 for 3600 s', mac: 'ab'.repeat(32), key_gen: 1 }];
    host.auditVerdict = { intact: false, rows: 2, first_broken: 2, problem: 'row 2 does not match its MAC: it was edited, or written without the key', unverifiable: 0, key_generation: 1 };
    renderSettings(host);
    const audit = screen.getByRole('region', { name: 'Audit log' });
    expect(await within(audit).findByText('Blocked 203.0.113.7 for 3600 s'), 'each action is listed').toBeTruthy();
    await fireEvent.click(within(audit).getByRole('button', { name: 'Verify the chain' }));
    const verdict = await within(audit).findByTestId('audit-verdict');
    await waitFor(() => expect(verdict.textContent, 'the broken row and why').toMatch(/Broken.*row 2.*edited/s));
  });

  it('starts a new key generation and says which signs the log, and what cannot be checked', async () => {
    const host = fakeHost();
    host.auditVerdict = { intact: true, rows: 9, first_broken: null, problem: null, unverifiable: 4, key_generation: 1 };
    renderSettings(host);
    const audit = screen.getByRole('region', { name: 'Audit log' });
    await fireEvent.click(within(audit).getByRole('button', { name: 'Start a new key' }));
    const verdict = await within(audit).findByTestId('audit-verdict');
    await waitFor(() => expect(verdict.textContent, 'the new generation is named').toContain('key generation 2'));
    expect(host.calls, 'the core was asked, then the chain verified again').toEqual(expect.arrayContaining(['rotateAuditKey', 'verifyAudit']));
    expect(verdict.textContent, 'rows of a key given up are counted, not called broken').toMatch(/4 rows were signed by an earlier key/);
  });
});

describe('settings', () => {
  it('refuses an unknown time zone with the reason and keeps the charts in the one they use', async () => {
    const host = renderSettings();
    await loaded();
    const zone = screen.getByRole('textbox', { name: /IANA time zone/ });
    await fireEvent.input(zone, { target: { value: 'Mars/Olympus' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Use this zone' }));
    expect((await screen.findByRole('alert')).textContent, 'the core says why').toContain('not a known time zone');
    expect(host.timeZone, 'nothing was changed').toBeNull();
    await fireEvent.input(zone, { target: { value: 'UTC' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Use this zone' }));
    await screen.findByText('Charts use UTC.');
    expect(screen.queryByRole('alert'), 'the refusal goes once a zone is taken').toBeNull();
  });

  it('says why a theme could not be saved', async () => {
    renderSettings(undefined, async () => {
      throw { code: 'database', message: 'The settings could not be written.' };
    });
    await loaded();
    await fireEvent.click(screen.getByRole('radio', { name: 'Dark' }));
    expect((await screen.findByRole('alert')).textContent, 'the reason from the core is shown').toContain('could not be written');
  });
});

describe('the settings page', () => {
  it('gives every card the one width, whatever it holds', async () => {
    renderSettings();
    await loaded();
    const panels = [...document.querySelectorAll('section.panel')];
    expect(panels.length, 'appearance, time zone, rules, keychain, data, audit, keyboard').toBe(7);
    expect(new Set(panels.map((p) => p.className)).size, 'no card is styled wider or narrower than the others').toBe(1);
  });
});
