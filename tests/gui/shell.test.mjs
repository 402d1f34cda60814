// The built app, in a real window under Xvfb, driven through tauri-driver and WebKitWebDriver.
// Opens every view by keyboard and by click, in light and dark, and saves a screenshot of each.
// Fails on a view that does not render or any error the page reports (console.error, uncaught
// exceptions, CSP violations: the UI collects them into [data-testid=unexpected-error]).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { KEY, newSession, startDriver } from './webdriver.mjs';

const app = process.env.GATEHOUSE_APP;
const artifacts = process.env.GATEHOUSE_ARTIFACTS ?? 'artifacts';
const VIEWS = ['fleet', 'timeline', 'heatmaps', 'rotation', 'compliance', 'incidents', 'settings'];
const LABELS = ['Fleet', 'Timeline', 'Heatmaps', 'Rotation', 'Compliance', 'Incidents', 'Settings'];

let driver;
let s;

before(async () => {
  assert.ok(app, 'GATEHOUSE_APP must name the built gatehouse-console binary');
  driver = await startDriver();
  s = await newSession(driver.base, app);
  await s.until('the shell to render', async () => (await s.findAll('nav [data-view]')).length === 7);
});

after(async () => {
  await s?.quit();
  driver?.stop();
});

async function unexpectedErrors() {
  const els = await s.findAll('[data-testid=unexpected-error]');
  return Promise.all(els.map((e) => s.text(e)));
}

async function heading() {
  return s.text(await s.find('main h1'));
}

async function shoot(dir, name) {
  const out = join(artifacts, 'screenshots', dir);
  mkdirSync(out, { recursive: true });
  const png = await s.screenshot();
  assert.ok(png.length > 5000, `screenshot of ${name} must not be empty`);
  writeFileSync(join(out, `${name}.png`), png);
}

test('every view opens from the keyboard, renders content, and raises no error', async () => {
  for (const [i, view] of VIEWS.entries()) {
    await s.chord([KEY.CONTROL, String(i + 1)]);
    await s.until(`Ctrl+${i + 1} to open ${view}`, async () => (await heading()) === LABELS[i]);
    const content = await s.find(`[data-testid=view-${view}]`);
    const text = await s.until(`${view} to show its content`, async () => {
      const t = await s.text(content);
      return t.trim().length > 40 ? t : null;
    });
    assert.ok(text.length > 40, `${view} must explain itself, got: ${text}`);
    await shoot('light', view);
    assert.deepEqual(await unexpectedErrors(), [], `no error may be raised on ${view}`);
  }
});

test('the keychain is reported available from the real Secret Service', async () => {
  await s.click(await s.find('nav [data-view=settings]'));
  const state = await s.until('the keychain state', async () => {
    const t = await s.text(await s.find('[data-testid=keychain-state]'));
    return t.trim() ? t : null;
  });
  assert.match(state, /Available/, `gnome-keyring runs in this session, got: ${state}`);
});

test('the command palette switches to the dark theme and every view stays readable', async () => {
  await s.chord([KEY.CONTROL, 'k']);
  const input = await s.until('the palette', () => s.find('[role=dialog] input'));
  await s.call('POST', `/element/${input}/value`, { text: 'theme dark\uE007' });
  await s.until('the dark theme', async () =>
    (await s.execute('return document.documentElement.dataset.theme ?? null')) === 'dark',
  );
  const bg = await s.execute('return getComputedStyle(document.body).backgroundColor');
  assert.notEqual(bg, 'rgb(246, 247, 249)', `the dark theme must change the background, got ${bg}`);
  for (const view of VIEWS) {
    await s.click(await s.find(`nav [data-view=${view}]`));
    await s.until(`${view} to open`, async () => (await s.find(`[data-testid=view-${view}]`)) !== undefined);
    await shoot('dark', view);
  }
  assert.deepEqual(await unexpectedErrors(), [], 'no error may be raised in the dark theme');
  // Leave the stored preference as we found it.
  await s.chord([KEY.CONTROL, 'k']);
  const again = await s.until('the palette', () => s.find('[role=dialog] input'));
  await s.call('POST', `/element/${again}/value`, { text: 'follow the system\uE007' });
});

test('a palette action leads to its form and does nothing by itself', async () => {
  await s.chord([KEY.CONTROL, 'k']);
  const input = await s.until('the palette', () => s.find('[role=dialog] input'));
  await s.call('POST', `/element/${input}/value`, { text: 'open an incident\uE007' });
  await s.until('the Incidents view', async () => (await heading()) === 'Incidents');
  await s.until('the new incident form', async () => (await s.findAll('form[aria-label="New incident"]')).length === 1);
  await shoot('light', 'palette-new-incident');
  assert.deepEqual(await unexpectedErrors(), [], 'no error may be raised by a palette action');
});
