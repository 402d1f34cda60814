// The guided flow from an alert to a contained incident, in the window: a real brute force
// against a Sekha fixture's proxy log raises an alert; the operator opens an incident from
// it, goes to the containment step, blocks the address (nftables in a network namespace the
// test makes; the agent verifies the block) and marks the incident contained. The time from
// the first failed sign-in to the verified block and the clicks it took are written to
// artifacts/contain.json (bench/contain.sh runs this drill several times for the median).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';

import { KEY, newSession, startDriver } from './webdriver.mjs';
import { answers, freePort, nginxTime, owned, scratchDir, startAndEnroll } from './support.mjs';

const app = process.env.GATEHOUSE_APP;
const artifacts = process.env.GATEHOUSE_ARTIFACTS ?? 'artifacts';
const bin = dirname(app ?? '.');
const repo = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const ATTACKER = '203.0.113.7';
const root = process.getuid?.() === 0;
const netns = `gh-gui-${process.pid}`;

let driver;
let s;
let agent;
let service;
let proxyLog;


before(async () => {
  assert.ok(app, 'GATEHOUSE_APP must name the built gatehouse-console binary');
  const dir = scratchDir('gh-gui-incident-');
  const serviceDir = join(dir, 'service');
  mkdirSync(serviceDir);
  writeFileSync(join(serviceDir, 'config.toml'), 'mcp_api_key = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b"\n', { mode: 0o600 });
  proxyLog = join(dir, 'sekha.access.log');
  writeFileSync(proxyLog, '');
  const servicePort = await freePort();
  service = owned(spawn(
    'python3',
    [join(repo, 'demo/fixture_service.py'), '--profile', 'sekha', '--port', String(servicePort), '--workdir', serviceDir, '--log', join(dir, 'service.log')],
    { stdio: 'ignore' },
  ));
  await answers(`http://127.0.0.1:${servicePort}/health`);
  if (root) {
    assert.equal(spawnSync('ip', ['netns', 'add', netns]).status, 0, 'the test makes its network namespace');
  }
  const agentPort = await freePort();
  const config = join(dir, 'agent.toml');
  writeFileSync(
    config,
    `listen = "127.0.0.1:${agentPort}"\nprofile = "sekha"\nstate_dir = "${join(dir, 'state')}"\n` +
      `service_url = "http://127.0.0.1:${servicePort}/health"\nservice_dir = "${serviceDir}"\n` +
      `[[logs]]\npath = "${proxyLog}"\nformat = "nginx_combined"\nsource = "proxy"\n` +
      (root ? `[firewall]\nnft_command = ["ip", "netns", "exec", "${netns}", "nft"]\n` : ''),
  );
  process.env.GATEHOUSE_DATA_DIR = scratchDir('gh-gui-incident-console-');
  agent = await startAndEnroll(bin, config, 'inc-one', `127.0.0.1:${agentPort}`, dir);
  driver = await startDriver();
  s = await newSession(driver.base, app);
  await s.until('the shell', async () => (await s.findAll('nav [data-view]')).length === 7);
});

after(async () => {
  await s?.quit();
  driver?.stop();
  agent?.kill('SIGTERM');
  service?.kill('SIGTERM');
  if (root) spawnSync('ip', ['netns', 'delete', netns]);
});

async function shoot(name) {
  const out = join(artifacts, 'screenshots', 'incidents');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.png`), await s.screenshot());
}

async function buttonNamed(scope, name) {
  for (const b of await s.findAll(`${scope} button`)) {
    if ((await s.text(b)).trim() === name) return b;
  }
  return null;
}

test('from an alert to a contained incident, with the block verified on the host', async () => {
  const started = Date.now();
  for (let i = 0; i < 6; i += 1) {
    appendFileSync(proxyLog, `${ATTACKER} - - [${nginxTime(new Date())}] "POST /mcp/tools/memory_stats HTTP/1.1" 401 40 "-" "curl/8"\n`);
  }
  let clicks = 0;
  await s.chord([KEY.CONTROL, '3']);
  await s.click(await s.until('the alerts tab', async () => (await s.findAll('[data-testid=tab-alerts]'))[0] ?? null));
  const incidentButton = await s.until(
    'the alert with its Incident button',
    async () => {
      const list = (await s.findAll('[data-testid=alerts]'))[0];
      // The list refreshes itself every two seconds while it is shown.
      if (!list || !(await s.text(list)).includes(ATTACKER)) return null;
      return buttonNamed('[data-testid=alerts]', 'Incident…');
    },
    30_000,
  );
  await shoot('alert');
  await s.click(incidentButton);
  clicks += 1;
  const detail = await s.until('the incident', async () => (await s.findAll('section[aria-label^="Incident "]'))[0] ?? null);
  assert.match(await s.text(detail), new RegExp(ATTACKER.replaceAll('.', '\\.')), 'the incident carries the alert address');
  await s.click(await s.until('the containment step', () => buttonNamed('section[aria-label^="Incident "]', 'Containment')));
  clicks += 1;
  await s.click(await s.until('the block action', () => buttonNamed('section[aria-label^="Incident "]', 'Block an address…')));
  clicks += 1;
  const confirm = await s.until('the confirmation', () => buttonNamed('[role=dialog]', `Block ${ATTACKER} on inc-one`));
  assert.match(await s.text(await s.find('[role=dialog]')), /lifts by itself/, 'the impact is named before anything happens');
  await shoot('confirm');
  await s.click(confirm);
  clicks += 1;
  const log = await s.until(
    'the block result in the log',
    async () => {
      const t = await s.text(await s.find('[data-testid=incident-log]'));
      return /block 203\.0\.113\.7/.test(t) && /(Verified|Not done)/.test(t) ? t : null;
    },
    30_000,
  );
  const contained = Date.now();
  if (root) {
    assert.match(log, /Verified/, `the block is verified on the host: ${log}`);
    const set = spawnSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'set', 'inet', 'gatehouse', 'blocked4'], { encoding: 'utf8' });
    assert.match(set.stdout, /203\.0\.113\.7/, 'the address is in the host firewall set');
  } else {
    assert.match(log, /Not done/, 'without root the refusal is shown, not hidden');
  }
  await s.click(await s.until('Mark contained', () => buttonNamed('section[aria-label^="Incident "]', 'Mark contained')));
  await s.until('contained', async () => /Contained/.test(await s.text(await s.find('section[aria-label^="Incident "]'))));
  // The containment step was read and acted on, never moved on to: reading is not a decision.
  const finalLog = await s.text(await s.find('[data-testid=incident-log]'));
  assert.doesNotMatch(finalLog, /on to: containment/, `choosing a step to read it wrote nothing to the log: ${finalLog}`);
  await shoot('contained');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised during the flow');
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, 'contain.json'), JSON.stringify({ ms: contained - started, clicks, verified: root }));
});

test('the alert triaged: its rule snoozed on its instance with a reason, then resolved as a selection', async () => {
  await s.chord([KEY.CONTROL, '3']);
  await s.click(await s.until('the alerts tab', async () => (await s.findAll('[data-testid=tab-alerts]'))[0] ?? null));
  await s.click(await s.until('the snooze button', () => buttonNamed('[data-testid=alerts]', 'Snooze rule…')));
  const reason = await s.until('the reason field', async () => (await s.findAll('[role=dialog] input[type=text], [role=dialog] input:not([type])'))[0] ?? null);
  await s.type(reason, 'pen test from 203.0.113.7 until Friday');
  await shoot('snooze');
  await s.click(await s.until('the snooze confirmation', () => buttonNamed('[role=dialog]', 'Snooze Brute force')));
  const snoozes = await s.until('the snooze listed', async () => (await s.findAll('[data-testid=snoozes]'))[0] ?? null);
  assert.match(await s.text(snoozes), /pen test from 203\.0\.113\.7 until Friday/, 'the snooze is listed with its reason');
  await s.click(await s.until('the alert checkbox', async () => (await s.findAll('[data-testid=alerts] input[type=checkbox]'))[0] ?? null));
  await s.click(await s.until('the bulk resolve', () => buttonNamed('[role=toolbar]', 'Resolve 1')));
  await s.until('the result said', async () => /Resolved 1 alert\./.test(await s.text(await s.find('main'))));
  await shoot('triaged');
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised while triaging');
});

test('why is the address blocked: asked of the fleet with the agent\'s decision and its lines, then unblocked everywhere', async () => {
  await s.chord([KEY.CONTROL, '6']);
  const field = await s.until('the why-blocked field', async () => (await s.findAll('[data-testid=why-blocked-ip]'))[0] ?? null);
  await s.type(field, ATTACKER);
  await s.click(await s.until('the ask button', () => buttonNamed('section[aria-labelledby=why-blocked-title]', 'Ask every instance')));
  const answer = await s.until(
    'the answer with the agent\'s decision',
    async () => {
      const el = (await s.findAll('[data-testid=why-blocked]'))[0];
      if (!el) return null;
      const t = await s.text(el);
      // The agent ran the console's policy on its own: brute force is recorded there.
      return /What the agents decided/.test(t) && /on inc-one/.test(t) && !/has decided nothing/.test(t) ? t : null;
    },
    30_000,
  );
  if (root) {
    assert.match(answer, /203\.0\.113\.7 is blocked on inc-one/, `the block placed from the incident is found on its host: ${answer}`);
  } else {
    assert.match(answer, /is not blocked on any instance now/, `without root nothing was blocked, and it says so: ${answer}`);
  }
  assert.match(answer, /Brute force/, `the decision names its rule: ${answer}`);
  await shoot('why-blocked');
  if (root) {
    await s.click(await s.until('unblock everywhere', () => buttonNamed('section[aria-labelledby=why-blocked-title]', 'Unblock everywhere…')));
    await s.click(await s.until('the unblock confirmation', () => buttonNamed('[role=dialog]', `Unblock ${ATTACKER} everywhere`)));
    const outcomes = await s.until(
      'what each instance did',
      async () => {
        const el = (await s.findAll('[data-testid=unblock-outcomes]'))[0];
        return el ? s.text(el) : null;
      },
      30_000,
    );
    assert.match(outcomes, /inc-one: done/, `the instance says it lifted the block: ${outcomes}`);
    const set = spawnSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'set', 'inet', 'gatehouse', 'blocked4'], { encoding: 'utf8' });
    assert.doesNotMatch(set.stdout, /203\.0\.113\.7/, 'the address is gone from the host firewall set');
    await shoot('unblocked');
  }
  const errors = await s.findAll('[data-testid=unexpected-error]');
  assert.equal(errors.length, 0, 'no error raised while asking and unblocking');
});
