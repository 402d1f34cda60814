// Helpers shared by the GUI tests that start fixture services and agents.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A loopback port nothing listens on right now. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

/** Wait (at most 10 s) until `url` answers 2xx. */
export async function answers(url) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within 10 s`);
}

// What a test leaves behind is removed when its process ends, however it ends (a failed
// assertion included): scratch folders (they hold test agents' keys), child processes, and
// services a restart started that no test owns (by their pid files).
const scratch = [];
const children = [];
const pidFiles = [];

function cleanup() {
  for (const child of children.splice(0)) {
    try {
      child.kill('SIGTERM');
    } catch {
      // already gone
    }
  }
  for (const file of pidFiles.splice(0)) {
    try {
      process.kill(Number(readFileSync(file, 'utf8')), 'SIGTERM');
    } catch {
      // no file, or already gone
    }
  }
  // The app is started by WebKitWebDriver (under tauri-driver) and outlives them if the
  // session could not be closed: find it by the data directory the test gave it.
  for (const pid of processesUsing(scratch)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Processes whose GATEHOUSE_DATA_DIR is one of `dirs` (Linux: read from /proc). */
function processesUsing(dirs) {
  if (!dirs.length) return [];
  const wanted = new Set(dirs.map((d) => `GATEHOUSE_DATA_DIR=${d}`));
  const found = [];
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (environ.some((v) => wanted.has(v))) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup();
    process.exit(1);
  });
}

/** A new folder under the system's temp folder, removed when the test process ends. */
export function scratchDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** `child`, killed when the test process ends if it is still running. */
export function owned(child) {
  children.push(child);
  return child;
}

/** The process whose pid `file` holds when the test process ends is killed then. */
export function ownPidFile(file) {
  pidFiles.push(file);
}

/** The time as nginx writes it in an access log line: `06/Dec/2026:23:41:57 +0000`. */
export function nginxTime(d) {
  const m = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${m}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Start an agent with `config` (`gatehouse-agent init` first, for its code) and enroll it
 * as `name` from the console CLI, retrying while the agent comes up (at most 10 s). */
export async function startAndEnroll(bin, config, name, address, dir) {
  const codeFile = join(dir, 'code');
  const init = spawnSync(join(bin, 'gatehouse-agent'), ['init', '--config', config, '--code-file', codeFile], {
    encoding: 'utf8',
  });
  assert.equal(init.status, 0, `agent init: ${init.stderr}`);
  const agent = owned(spawn(join(bin, 'gatehouse-agent'), ['run', '--config', config], { stdio: 'ignore' }));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const add = spawnSync(
      join(bin, 'gatehouse'),
      ['instance', 'add', '--name', name, '--address', address, '--code-file', codeFile],
      { encoding: 'utf8' },
    );
    if (add.status === 0) return agent;
    assert.ok(Date.now() < deadline, `the CLI enrolls the agent: ${add.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Every secret the app keeps in the keychain under `service` (`GATEHOUSE_KEYCHAIN_SERVICE`),
 * read as raw bytes with secret-tool, by name. The audit head (a row id and MAC, which agents
 * are sent too) is not a secret.
 */
export function keychainSecrets(service) {
  const listing = spawnSync('secret-tool', ['search', '--all', '--unlock', 'service', service], { encoding: 'latin1' });
  const names = [...`${listing.stdout}\n${listing.stderr}`.matchAll(/^attribute\.username = (.*)$/gm)]
    .map((m) => m[1])
    .filter((name) => name !== 'audit-head');
  return [...new Set(names)].map((name) => ({
    name,
    value: spawnSync('secret-tool', ['lookup', 'service', service, 'username', name]).stdout,
  }));
}

/** The forms a secret could take in a file: its bytes, and hex and base64 for binary ones;
 * for a PEM, each full line of its body (a key copied without its armour). */
function forms(value) {
  const text = value.toString('latin1');
  if (text.includes('-----BEGIN')) {
    return text.split('\n').filter((line) => line.length >= 40 && !line.startsWith('-----'));
  }
  return [text, value.toString('hex'), value.toString('base64').replace(/=+$/, '')].filter((f) => f.length >= 16);
}

/** Every regular file below `root` (links are not followed), skipping `keyrings` (the
 * keychain's own encrypted store). */
function filesUnder(root) {
  const out = [];
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop();
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() && e.name !== 'keyrings') stack.push(path);
      else if (e.isFile() && lstatSync(path).size < 64 << 20) out.push(path);
    }
  }
  return out;
}

/**
 * No secret the console holds (every keychain entry of `service`, and `known`: an enrollment
 * code, a rotated key) and no private key in PEM form is in any file below `roots`: the
 * console's data directory, its logs, the webview's storage and caches.
 */
export function assertNoSecretsOnDisk(roots, service, known = []) {
  const secrets = [...keychainSecrets(service), ...known.map(([name, text]) => ({ name, value: Buffer.from(text) }))];
  assert.ok(
    secrets.some((s) => s.name.endsWith('client.key')),
    `the scan knows the console's keys, so finding nothing means something: ${secrets.map((s) => s.name).join(', ')}`,
  );
  const needles = secrets.flatMap((s) => forms(s.value).map((form) => ({ name: s.name, form: Buffer.from(form, 'latin1') })));
  const found = [];
  let scanned = 0;
  for (const root of roots) {
    for (const file of filesUnder(root)) {
      const bytes = readFileSync(file);
      scanned += 1;
      if (bytes.includes('PRIVATE KEY-----')) found.push(`${file}: a PEM private key`);
      for (const { name, form } of needles) {
        if (bytes.includes(form)) found.push(`${file}: ${name}`);
      }
    }
  }
  assert.ok(scanned > 0, `the scan read files (the console's database and logs at least) under ${roots.join(', ')}`);
  assert.deepEqual(found, [], `no secret of the console is on disk (${scanned} files scanned)`);
  return scanned;
}
