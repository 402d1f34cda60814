// The Compliance view on a real Sekha fixture service and its agent: checks run, an item
// drifts and re-opens with its evidence, a manual item is signed off, and the exported HTML
// report is rendered in WebKitGTK's MiniBrowser and screenshot.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';

import { KEY, newBrowserSession, newSession, startBrowserDriver, startDriver } from './webdriver.mjs';
import { answers, freePort, owned, scratchDir, startAndEnroll } from './support.mjs';

const app = process.env.GATEHOUSE_APP;
const artifacts = process.env.GATEHOUSE_ARTIFACTS ?? 'artifacts';
const bin = dirname(app ?? '.');
const repo = resolve(dirname(new URL(import.meta.url).pathname), '../..');

let driver;
let s;
let agent;
let service;
let configFile;
let dir;

function cli(args) {
  const run = spawnSync(join(bin, 'gatehouse'), args, { encoding: 'utf8' });
  return run;
}

before(async () => {
  assert.ok(app, 'GATEHOUSE_APP must name the built gatehouse-console binary');
  dir = scratchDir('gh-gui-compliance-');
  const serviceDir = join(dir, 'service');
  mkdirSync(serviceDir);
  configFile = join(serviceDir, 'config.toml');
  writeFileSync(configFile, 'mcp_api_key = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b"\n', { mode: 0o600 });
  chmodSync(configFile, 0o600);
  const servicePort = await freePort();
  service = owned(spawn(
    'python3',
    [join(repo, 'demo/fixture_service.py'), '--profile', 'sekha', '--port', String(servicePort), '--rate-limit', '20',
      '--workdir', serviceDir, '--log', join(dir, 'service.log')],
    { stdio: 'ignore' },
  ));
  await answers(`http://127.0.0.1:${servicePort}/health`);
  const agentPort = await freePort();
  const config = join(dir, 'agent.toml');
  writeFileSync(
    config,
    `listen = "127.0.0.1:${agentPort}"\nprofile = "sekha"\nstate_dir = "${join(dir, 'state')}"\n` +
      `service_url = "http://127.0.0.1:${servicePort}/health"\nservice_dir = "${serviceDir}"\n` +
      `[checks]\nservice_user = "${userInfo().username}"\n`,
  );
  process.env.GATEHOUSE_DATA_DIR = scratchDir('gh-gui-compliance-console-');
  agent = await startAndEnroll(bin, config, 'chk-one', `127.0.0.1:${agentPort}`, dir);
  const run = cli(['checks', 'run']);
  assert.equal(run.status, 0, `the checks run from the CLI: ${run.stdout} ${run.stderr}`);
  driver = await startDriver();
  s = await newSession(driver.base, app);
  await s.until('the shell', async () => (await s.findAll('nav [data-view]')).length === 7);
});

after(async () => {
  await s?.quit();
  driver?.stop();
  agent?.kill('SIGTERM');
  service?.kill('SIGTERM');
});

async function shoot(session, name) {
  const out = join(artifacts, 'screenshots', 'compliance');
  mkdirSync(out, { recursive: true });
  const png = await session.screenshot();
  writeFileSync(join(out, `${name}.png`), png);
  return png;
}

async function row(id) {
  return (await s.findAll(`[data-item="${id}"]`))[0] ?? null;
}

test('an item that drifts re-opens in the window with its evidence', async () => {
  await s.chord([KEY.CONTROL, '5']);
  const scorecard = await s.until('the scorecard', async () => {
    const t = await s.text(await s.find('table[aria-label=Scorecards]'));
    return /chk-one/.test(t) ? t : null;
  });
  assert.match(scorecard, /\d+%/, 'the scorecard shows a score');
  const perms = await s.until('the file permissions item', () => row('pre.file-permissions'));
  assert.match(await s.text(perms), /Pass/, 'mode 0600 passes, in words');
  await shoot(s, 'checklist');

  chmodSync(configFile, 0o644);
  // Found and pressed in one step: the list refreshes under the test while it runs.
  const pressed = await s.execute(
    "const b = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Run checks now'); b?.click(); return !!b",
  );
  assert.ok(pressed, 'the view offers "Run checks now"');
  const reopened = await s.until(
    'the item re-opened',
    async () => {
      const t = await s.text(await row('pre.file-permissions'));
      return /re-opened/.test(t) ? t : null;
    },
    60_000,
  );
  assert.match(reopened, /Fail/, `it fails again: ${reopened}`);
  await s.click(await row('pre.file-permissions'));
  const detail = await s.until('the details', async () => {
    const t = await s.text(await s.find('aside[aria-label="Item details"]'));
    return /mode 0644/.test(t) ? t : null;
  });
  assert.match(detail, /config\.toml/, 'the evidence names the file');
  const inView = await s.execute(
    "const r = document.querySelector('[data-item=\"pre.file-permissions\"]').getBoundingClientRect();" +
      "const m = document.querySelector('main').getBoundingClientRect(); return r.top >= m.top && r.bottom <= m.bottom",
  );
  assert.ok(inView, 'the opened item stays in view beside its detail, not scrolled away by the narrower list');
  await shoot(s, 'reopened');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised');
});

test('a manual item is signed off with a note', async () => {
  // Manual items nobody took on wait, counted, under "To set up", after what needs attention.
  const toSetUp = await s.until('the to-set-up group', async () => (await s.findAll('[data-testid=to-set-up] summary'))[0] ?? null);
  const summary = await s.text(toSetUp);
  assert.match(summary, /To set up \(\d+\)/i, `the manual items not taken on are counted: ${summary}`);
  const order = await s.execute(
    "const h = [...document.querySelectorAll('section[aria-label=\"chk-one checklist\"] h3, section[aria-label=\"chk-one checklist\"] summary')].map((e) => e.textContent);" +
      'return [h.findIndex((t) => /Needs attention/i.test(t)), h.findIndex((t) => /To set up/i.test(t)), h.length]',
  );
  assert.ok(order[0] === 0 && order[1] === order[2] - 1, `failures lead and the manual items close the list: ${order}`);
  await s.click(toSetUp);
  await s.click(await s.until('the restore item', () => row('post.backup-restore')));
  const input = await s.until('the sign-off form', async () => (await s.findAll('form[aria-label="Sign off"] input'))[0] ?? null);
  await s.type(input, 'restored sekha.db on a scratch host');
  await s.click(await s.find('form[aria-label="Sign off"] button'));
  const done = await s.until('the item done', async () => {
    const t = await s.text(await row('post.backup-restore'));
    return /Done/.test(t) ? t : null;
  });
  assert.match(done, /signed off/, `it says by whom and when: ${done}`);
  const detail = await s.text(await s.find('aside[aria-label="Item details"]'));
  assert.match(detail, /restored sekha\.db on a scratch host/, 'the note is kept as evidence');
  await shoot(s, 'signed-off');
});

test('the exported HTML report renders and reads as a report', async () => {
  const report = join(dir, 'report.html');
  const exported = cli(['checks', 'export', '--html', report]);
  assert.equal(exported.status, 0, `the report is written: ${exported.stderr}`);
  const html = readFileSync(report, 'utf8');
  assert.ok(!/<script/i.test(html), 'the report runs no script');
  const libs = readdirSync('/usr/lib').filter((d) => existsSync(join('/usr/lib', d, 'webkit2gtk-4.1/MiniBrowser')));
  assert.ok(libs.length > 0, 'WebKitGTK ships MiniBrowser (libwebkit2gtk-4.1-0)');
  const browserDriver = await startBrowserDriver(await freePort());
  const browser = await newBrowserSession(browserDriver.base, join('/usr/lib', libs[0], 'webkit2gtk-4.1/MiniBrowser'));
  try {
    await browser.navigate(`file://${report}`);
    const text = await browser.until('the report', async () => {
      const t = await browser.execute('return document.body.innerText');
      return /Compliance report/.test(t) ? t : null;
    });
    assert.match(text, /chk-one/, 'it names the instance');
    assert.match(text, /re-opened/, 'it shows the drift');
    assert.match(text, /restored sekha\.db on a scratch host/, 'and the evidence');
    const bars = await browser.execute('return document.querySelectorAll("svg rect").length');
    assert.ok(bars >= 5, `the chart is drawn (${bars} shapes)`);
    const png = await shoot(browser, 'report');
    assert.ok(png.length > 20_000, `the screenshot has content (${png.length} bytes)`);
  } finally {
    await browser.quit();
    browserDriver.stop();
  }
});
