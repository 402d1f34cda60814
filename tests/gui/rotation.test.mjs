// Rotating a key through the window: a Sekha fixture service with its agent (real processes
// on loopback), enrolled with the CLI, then the Rotation view's dialog: preview, rotate,
// verified result, and the new key copied from the console process, never shown.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';

import { KEY, newSession, startDriver } from './webdriver.mjs';
import { answers, assertNoSecretsOnDisk, freePort, ownPidFile, scratchDir, startAndEnroll } from './support.mjs';

const app = process.env.GATEHOUSE_APP;
const artifacts = process.env.GATEHOUSE_ARTIFACTS ?? 'artifacts';
const bin = dirname(app ?? '.');
const repo = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const OLD_KEY = 'gui-old-key-0123456789-abcdefghijklmnopqrstu';

let driver;
let s;
let agent;
let pidFile;
let servicePort;
let configFile;
let newKey;

/** Whether Sekha's protected endpoint accepts `key`. */
async function accepts(key) {
  const res = await fetch(`http://127.0.0.1:${servicePort}/mcp/tools/memory_stats`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return res.status !== 401 && res.status !== 403;
}

before(async () => {
  assert.ok(app, 'GATEHOUSE_APP must name the built gatehouse-console binary');
  const dir = scratchDir('gh-gui-rotation-');
  const service = join(dir, 'service');
  mkdirSync(service);
  configFile = join(service, 'config.toml');
  writeFileSync(configFile, `mcp_api_key = "${OLD_KEY}"\n`, { mode: 0o600 });
  servicePort = await freePort();
  pidFile = join(dir, 'service.pid');
  // The agent restarts the service during rotation: whichever process the pid file names at
  // the end is the one to stop.
  ownPidFile(pidFile);
  const restart = `sh ${repo}/demo/restart_fixture.sh ${pidFile} --profile sekha --port ${servicePort} --workdir ${service} --log ${join(dir, 'service.log')}`;
  execFileSync('sh', ['-c', restart]);
  await answers(`http://127.0.0.1:${servicePort}/health`);
  const agentPort = await freePort();
  const config = join(dir, 'agent.toml');
  writeFileSync(
    config,
    `listen = "127.0.0.1:${agentPort}"\nprofile = "sekha"\nstate_dir = "${join(dir, 'state')}"\n` +
      `service_url = "http://127.0.0.1:${servicePort}/health"\nservice_dir = "${service}"\n` +
      `restart_command = ["sh", "-c", "${restart}"]\nrestart_timeout_secs = 20\n`,
  );
  process.env.GATEHOUSE_DATA_DIR = scratchDir('gh-gui-rotation-console-');
  agent = await startAndEnroll(bin, config, 'rot-one', `127.0.0.1:${agentPort}`, dir);
  driver = await startDriver();
  s = await newSession(driver.base, app);
  await s.until('the shell', async () => (await s.findAll('nav [data-view]')).length === 7);
});

after(async () => {
  await s?.quit();
  driver?.stop();
  agent?.kill('SIGTERM');
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8')));
  } catch {
    // already gone
  }
});

async function shoot(name) {
  const out = join(artifacts, 'screenshots', 'rotation');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.png`), await s.screenshot());
}

test('a key is rotated from the window, verified on the service, and copied without being shown', async () => {
  await s.chord([KEY.CONTROL, '4']);
  const rotate = await s.until(
    'the key in the inventory',
    async () => (await s.findAll('[data-credential="rot-one/api_key/mcp_api_key"] button'))[0] ?? null,
    20_000,
  );
  await shoot('inventory');
  // The status line (the core's count) and the Due column (the window's) name the same day.
  const keyRow = '[data-credential="rot-one/api_key/mcp_api_key"]';
  const statusDays = /due in (\d+) days?/.exec(await s.text(await s.find(keyRow)))?.[1];
  const dueText = await s.text(await s.find(`${keyRow} [data-testid=due]`));
  if (statusDays !== undefined) {
    assert.equal(/in (\d+) days?/.exec(dueText)?.[1], statusDays, `the Due column agrees with the status to the day: ${dueText}`);
  }
  await s.click(rotate);
  const confirm = await s.until('the preview', async () => {
    for (const b of await s.findAll('[role=dialog] button')) {
      if ((await s.text(b)) === 'Rotate mcp_api_key on rot-one') return b;
    }
    return null;
  });
  assert.match(await s.text(await s.find('[role=dialog]')), /cutting over at once/, 'the impact is named');
  await shoot('preview');
  await s.click(confirm);
  const result = await s.until(
    'the verified result',
    async () => {
      const t = await s.text(await s.find('[data-testid=rotation-result]'));
      return /Rotated and verified/.test(t) ? t : null;
    },
    60_000,
  );
  assert.match(result, /accepts the new key/, `the steps say what was proven: ${result}`);
  assert.match(result, /no config file holds it any more/, `and how the old key is known to be gone, without sending it: ${result}`);
  await shoot('result');
  assert.equal(await accepts(OLD_KEY), false, 'the service refuses the old key');
  const written = readFileSync(configFile, 'utf8');
  newKey = /mcp_api_key = "([^"]+)"/.exec(written)?.[1];
  assert.ok(newKey && newKey !== OLD_KEY, 'the config holds a new key');
  assert.equal(await accepts(newKey), true, 'and the service accepts it');
  const page = await s.execute('return document.documentElement.outerHTML');
  assert.ok(!page.includes(newKey), 'the new key never enters the window');
  for (const b of await s.findAll('[role=dialog] button')) {
    if ((await s.text(b)).startsWith('Copy the new key')) await s.click(b);
  }
  const copied = await s.until('the copy confirmation', async () => {
    const t = await s.text(await s.find('[role=dialog]'));
    return /on the clipboard for 30 seconds/.test(t) ? t : null;
  });
  assert.match(copied, /rot-one/, 'it says which key');
  await shoot('copied');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised during the rotation');
});

test('neither key, nor any secret of the console, is on disk outside the service and the keychain', () => {
  assert.ok(newKey, 'the rotation ran, so there is a new key to look for');
  const env = process.env;
  const roots = [env.GATEHOUSE_DATA_DIR, env.XDG_DATA_HOME, env.XDG_CACHE_HOME, env.XDG_CONFIG_HOME].filter(Boolean);
  assertNoSecretsOnDisk(roots, env.GATEHOUSE_KEYCHAIN_SERVICE ?? 'Gatehouse', [
    ['the rotated key', newKey],
    ['the old key', OLD_KEY],
  ]);
});
