// A minimal W3C WebDriver client over fetch, enough to drive the app through tauri-driver.
// Every call has a timeout, so a hung app fails the test instead of hanging CI.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { owned } from './support.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export async function startDriver({ port = 4444, nativeDriver = '/usr/bin/WebKitWebDriver' } = {}) {
  const proc = owned(
    spawn('tauri-driver', ['--port', String(port), '--native-driver', nativeDriver], {
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`tauri-driver exited with ${proc.exitCode}`);
    try {
      const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { base, stop: () => proc.kill('SIGTERM') };
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  proc.kill('SIGKILL');
  throw new Error('tauri-driver did not start listening within 15 s');
}

async function request(base, method, path, body, timeoutMs = 30_000) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const v = json.value ?? {};
    throw new Error(`WebDriver ${method} ${path}: ${v.error ?? res.status} ${v.message ?? ''}`);
  }
  return json.value;
}

/** WebKitGTK's own WebDriver on `port`, driving MiniBrowser: for pages outside the app. */
export async function startBrowserDriver(port) {
  const proc = owned(spawn('WebKitWebDriver', [`--port=${port}`], { stdio: ['ignore', 'inherit', 'inherit'] }));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`WebKitWebDriver exited with ${proc.exitCode}`);
    try {
      const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { base, stop: () => proc.kill('SIGTERM') };
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  proc.kill('SIGKILL');
  throw new Error('WebKitWebDriver did not start listening within 15 s');
}

export async function newBrowserSession(base, binary) {
  const value = await request(
    base,
    'POST',
    '/session',
    {
      capabilities: {
        alwaysMatch: { 'webkitgtk:browserOptions': { binary, args: ['--automation'] } },
      },
    },
    60_000,
  );
  return new Session(base, value.sessionId);
}

export async function newSession(base, application, args = []) {
  const value = await request(
    base,
    'POST',
    '/session',
    {
      capabilities: {
        alwaysMatch: { browserName: 'wry', 'tauri:options': { application, args } },
      },
    },
    60_000,
  );
  return new Session(base, value.sessionId);
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  call(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const el = await this.call('POST', '/element', { using: 'css selector', value: css });
    return el[ELEMENT];
  }

  async findAll(css) {
    const els = await this.call('POST', '/elements', { using: 'css selector', value: css });
    return els.map((e) => e[ELEMENT]);
  }

  text(element) {
    return this.call('GET', `/element/${element}/text`);
  }

  /** Type into an input (after clearing it). */
  async type(element, text) {
    await this.call('POST', `/element/${element}/clear`, {});
    return this.call('POST', `/element/${element}/value`, { text });
  }

  navigate(url) {
    return this.call('POST', '/url', { url });
  }

  click(element) {
    return this.call('POST', `/element/${element}/click`, {});
  }

  execute(script, args = []) {
    return this.call('POST', '/execute/sync', { script, args });
  }

  /** Press keys together (e.g. ['\uE009', '3'] for Ctrl+3) through the Actions API. */
  async chord(keys) {
    const down = keys.map((value) => ({ type: 'keyDown', value }));
    const up = [...keys].reverse().map((value) => ({ type: 'keyUp', value }));
    await this.call('POST', '/actions', {
      actions: [{ type: 'key', id: 'keyboard', actions: [...down, ...up] }],
    });
  }

  /** A screenshot of what is on screen after the page has painted its latest changes. */
  async screenshot() {
    await this.call('POST', '/execute/async', {
      script:
        'const done = arguments[arguments.length - 1];' +
        'requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 50)));',
      args: [],
    });
    // WebKitGTK takes the snapshot from the next frame it draws. Without the DMA-BUF renderer
    // (the console turns it off where no GPU renders) a page at rest draws none, so a change
    // nobody can see (a transparent outline, toggled each frame for two seconds) asks for one.
    await this.execute(
      "const root = document.documentElement; const end = performance.now() + 2000;" +
        "const step = () => { root.style.outline = root.style.outline ? '' : '1px solid transparent';" +
        " if (performance.now() < end) requestAnimationFrame(step); else root.style.outline = ''; };" +
        'requestAnimationFrame(step); return true',
    );
    return Buffer.from(await this.call('GET', '/screenshot'), 'base64');
  }

  /** Poll until fn returns a truthy value. */
  async until(what, fn, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      try {
        last = await fn();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      await sleep(100);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
  }

  quit() {
    return request(this.base, 'DELETE', `/session/${this.id}`, undefined, 10_000).catch(() => {});
  }
}

export const KEY = { CONTROL: '\uE009' };
