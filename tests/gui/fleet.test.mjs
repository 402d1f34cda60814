// Enrollment through the window: a real agent process on loopback, the Add instance dialog,
// the instance listed over mutual TLS, then revoked with a confirmation.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';

import { newSession, startDriver } from './webdriver.mjs';
import { assertNoSecretsOnDisk, freePort, nginxTime, owned, scratchDir } from './support.mjs';

const app = process.env.GATEHOUSE_APP;
const artifacts = process.env.GATEHOUSE_ARTIFACTS ?? 'artifacts';
const agentBinary = join(dirname(app ?? '.'), 'gatehouse-agent');

let driver;
let s;
let agent;
let address;
let code;
let clipboard;

/** Put text on the X clipboard as a terminal's copy does: xclip serves it until another
 * program takes the clipboard (the app clears it once the code is spent). */
async function copy(text) {
  clipboard = owned(spawn('xclip', ['-selection', 'clipboard', '-i', '-quiet'], { stdio: ['pipe', 'ignore', 'ignore'] }));
  clipboard.stdin.end(text);
  const deadline = Date.now() + 5000;
  while (pasted() !== text) {
    assert.ok(Date.now() < deadline, 'xclip holds the clipboard');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the X clipboard holds now ('' when nothing does). */
function pasted() {
  return spawnSync('xclip', ['-selection', 'clipboard', '-o'], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
}

before(async () => {
  assert.ok(app, 'GATEHOUSE_APP must name the built gatehouse-console binary');
  const dir = scratchDir('gh-gui-agent-');
  const port = await freePort();
  address = `127.0.0.1:${port}`;
  const config = join(dir, 'agent.toml');
  const log = join(dir, 'access.log');
  // Stamped with the time of writing: the timeline shows the last 24 hours by default.
  const at = nginxTime(new Date());
  writeFileSync(
    log,
    [1, 2, 3].map((n) => `203.0.113.${n} - - [${at}] "POST /mcp/tools/memory_stats HTTP/1.1" 401 35 "-" "curl/8"\n`).join('') +
      // A line no format understands, with a right-to-left override in it.
      'upstream said: \u202Eyek dab\n',
  );
  writeFileSync(
    config,
    `listen = "${address}"\nprofile = "sekha"\nstate_dir = "${join(dir, 'state')}"\n\n` +
      `[[logs]]\npath = "${log}"\nformat = "nginx_combined"\nsource = "proxy"\n`,
  );
  const init = spawnSync(agentBinary, ['init', '--config', config, '--code-file', join(dir, 'code')], {
    encoding: 'utf8',
  });
  assert.equal(init.status, 0, `agent init: ${init.stderr}`);
  code = readFileSync(join(dir, 'code'), 'utf8').trim();
  agent = owned(spawn(agentBinary, ['run', '--config', config], { stdio: 'ignore' }));

  // A console data directory of its own, so the other GUI test's state does not mix in.
  process.env.GATEHOUSE_DATA_DIR = scratchDir('gh-gui-console-');
  driver = await startDriver();
  s = await newSession(driver.base, app);
  await s.until('the fleet view', async () => (await s.findAll('nav [data-view]')).length === 7);
});

after(async () => {
  await s?.quit();
  driver?.stop();
  agent?.kill('SIGTERM');
  clipboard?.kill('SIGTERM');
});

async function shoot(name) {
  const out = join(artifacts, 'screenshots', 'fleet');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.png`), await s.screenshot());
}

async function type(css, text) {
  const el = await s.find(css);
  await s.call('POST', `/element/${el}/value`, { text });
}

test('an instance enrolled through the dialog appears healthy over mutual TLS', async () => {
  const add = await s.until('the Add instance button', async () => {
    for (const b of await s.findAll('button')) if ((await s.text(b)) === 'Add instance') return b;
    return null;
  });
  await s.click(add);
  await s.until('the dialog', () => s.find('[role=dialog] input'));
  await type('[role=dialog] label:nth-of-type(1) input', 'edge-one');
  await type('[role=dialog] label:nth-of-type(2) input', address);
  // Copied as an operator copies it from the host's terminal; the app reads the clipboard.
  await copy(code);
  await shoot('add-dialog');
  const submit = await s.find('[role=dialog] button[type=submit]');
  assert.equal(await s.text(submit), 'Enroll with the copied code', 'the dialog offers the copied code');
  await s.click(submit);
  const row = await s.until(
    'the enrolled instance',
    async () => {
      const rows = await s.findAll('tr[data-instance="edge-one"]');
      return rows[0] ?? null;
    },
    20_000,
  );
  const text = await s.until('a first contact', async () => {
    const t = await s.text(row);
    return /OK/.test(t) ? t : null;
  });
  assert.match(text, /OK/, `the new instance is reachable over mutual TLS: ${text}`);
  const profile = await s.text(await s.find('tr[data-instance="edge-one"] td:nth-child(3)'));
  assert.equal(profile, 'sekha', 'with the profile the agent reported');
  await shoot('enrolled');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised during enrollment');
  const page = await s.call('POST', '/execute/sync', { script: 'return document.documentElement.outerHTML', args: [] });
  assert.ok(!String(page).includes(code.slice(4, 40)), 'the code never reached the window');
  assert.equal(pasted(), '', 'the spent code is no longer on the clipboard');
});

test('the failed logins on the host reach the timeline within seconds', async () => {
  await s.click(await s.find('nav [data-view=timeline]'));
  await s.until('the timeline view', async () => (await s.findAll('[data-testid=timeline-list]')).length === 1);
  await shoot('timeline-opened');
  await s.until(
    'three failed logins on the timeline',
    async () => {
      const rows = await s.findAll('[data-testid=timeline-list] [data-kind=auth]');
      return rows.length >= 3;
    },
    20_000,
  );
  const rows = await s.findAll('[data-testid=timeline-list] [data-kind=auth]');
  await s.click(rows[0]);
  const raw = await s.until('the raw line', async () => {
    const t = await s.text(await s.find('[data-testid=raw-line]'));
    return t.startsWith('203.0.113.') ? t : null;
  });
  assert.match(raw, /"POST \/mcp\/tools\/memory_stats HTTP\/1.1" 401/, 'the raw line is shown as read on the host');
  await shoot('timeline');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised on the timeline');
  await s.click(await s.find('nav [data-view=fleet]'));
  // Events are pulled every second, the health checked every minute: the row says the newer.
  const heard = await s.until('the last event pull on the fleet row', async () => {
    const t = await s.text(await s.find('tr[data-instance="edge-one"] [data-testid=last-heard]'));
    return /^synced /.test(t) ? t : null;
  });
  assert.match(heard, /^synced (just now|\d+ seconds? ago)$/, `the fleet shows the recent pull, not an older contact: ${heard}`);
  // The line no format understood is counted on the row and one click away.
  const unparsed = await s.until('the unparsed count on the fleet row', async () => {
    const found = await s.findAll('tr[data-instance="edge-one"] [data-testid=unparsed]');
    return found.length ? found[0] : null;
  });
  assert.equal(await s.text(unparsed), '1 unparsed line', 'the row counts the line no format understood');
  await shoot('fleet-unparsed');
  await s.click(unparsed);
  const row = await s.until('the unparsed line, alone on the timeline', async () => {
    const rows = await s.findAll('[data-testid=timeline-list] [data-kind=unparsed]');
    const all = await s.findAll('[data-testid=timeline-list] [role=option]');
    return rows.length === 1 && all.length === 1 ? rows[0] : null;
  });
  await s.click(row);
  const line = await s.until('the unparsed line as read', async () => {
    const t = await s.text(await s.find('[data-testid=raw-line]'));
    return t.startsWith('upstream said') ? t : null;
  });
  assert.match(line, /<U\+202E>yek dab/, `the override is shown as an escape, not obeyed: ${line}`);
  await shoot('timeline-unparsed');
});

test('a heatmap cell opens exactly its failed sign-ins in the timeline', async () => {
  await s.click(await s.find('nav [data-view=heatmaps]'));
  const cell = await s.until(
    'a heatmap cell with failed sign-ins',
    async () => (await s.findAll('[data-testid=heatmap-cells] button:not([data-count="0"])'))[0] ?? null,
    20_000,
  );
  const count = Number(await s.call('GET', `/element/${cell}/attribute/data-count`));
  // The cell is re-rendered when the tab comes back; its count is what matters.
  const label = await s.call('GET', `/element/${cell}/attribute/aria-label`);
  assert.ok(count >= 3, `the three failed logins are counted in one cell: ${label}`);
  await shoot('heatmap');
  await s.click(await s.find('[data-testid=tab-offenders]'));
  const table = await s.until('the offenders table', () => s.find('[data-testid=offenders]'));
  const listed = await s.text(table);
  for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
    assert.ok(listed.includes(ip), `${ip} failed to sign in, so it is an offender: ${listed}`);
  }
  await shoot('offenders');
  // The window is 1280 px wide: each row's last button (Incident…) must be inside what is shown.
  const cut = await s.execute(
    "const main = document.querySelector('main'); const edge = main.getBoundingClientRect().left + main.clientWidth;" +
      "return [...document.querySelectorAll('[data-testid=offenders] tbody tr')]" +
      ".map((r) => [...r.querySelectorAll('button')].pop()).filter((b) => b && b.getBoundingClientRect().right > edge).length",
  );
  assert.equal(cut, 0, 'no offender row has its Events or Incident… button cut off at 1280 px');
  await s.click(await s.find('[role=tablist] button'));
  await s.click(await s.until('the chart again', async () => (await s.findAll('[data-testid=heatmap-cells] button:not([data-count="0"])'))[0] ?? null));
  const chip = await s.until('the timeline with the cell as its filter', () => s.find('[data-testid=timeline-preset]'));
  assert.match(await s.text(chip), /heatmap cell/, 'the timeline says what it shows');
  const rows = await s.until('the cell\'s events', async () => {
    const found = await s.findAll('[data-testid=timeline-list] [role=option]');
    return found.length === count ? found : null;
  });
  for (const row of rows) {
    assert.equal(await s.call('GET', `/element/${row}/attribute/data-kind`), 'auth', 'only failed sign-ins are listed');
  }
  await shoot('heatmap-cell-in-timeline');
  await s.click(await s.find('nav [data-view=fleet]'));
});

test('revoking asks first, then the row says revoked', async () => {
  const revoke = await s.until('the fleet list with edge-one', () => s.find('button[aria-label="Revoke edge-one"]'));
  await s.click(revoke);
  const dialog = await s.until('the confirmation', () => s.find('[role=dialog]'));
  assert.match(await s.text(dialog), /refuse this console's certificate at once/, 'the impact is named');
  await shoot('revoke-confirm');
  for (const b of await s.findAll('[role=dialog] button')) {
    if ((await s.text(b)) === 'Revoke edge-one') await s.click(b);
  }
  await s.until('the revoked state', async () => {
    const row = await s.find('tr[data-instance="edge-one"]');
    return /Revoked/.test(await s.text(row));
  });
  await shoot('revoked');
});

test('no secret of the console is on disk: its data, its logs, the webview storage', () => {
  const env = process.env;
  const roots = [env.GATEHOUSE_DATA_DIR, env.XDG_DATA_HOME, env.XDG_CACHE_HOME, env.XDG_CONFIG_HOME].filter(Boolean);
  const service = env.GATEHOUSE_KEYCHAIN_SERVICE ?? 'Gatehouse';
  assertNoSecretsOnDisk(roots, service, [['the enrollment code', code]]);
  // The scan finds what it looks for: a planted copy of the code, and of a console key.
  const planted = scratchDir('gh-gui-planted-');
  writeFileSync(join(planted, 'leak.log'), `before ${code} after`);
  assert.throws(() => assertNoSecretsOnDisk([planted], service, [['the enrollment code', code]]), /the enrollment code/, 'a planted code is found');
  writeFileSync(join(planted, 'leak.log'), '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
  assert.throws(() => assertNoSecretsOnDisk([planted], service), /PEM private key/, 'a private key is found');
});
