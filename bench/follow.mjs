#!/usr/bin/env node
// CPU of the console's web process while the Timeline follows live events, beside the Fleet
// view, with an agent on loopback whose proxy log gains four failed sign-ins a second.
//
//   GATEHOUSE_APP=target/release/gatehouse-console \
//     dbus-run-session (with gnome-keyring unlocked) xvfb-run -a -s "-screen 0 1280x800x24" node bench/follow.mjs [seconds]
//
// Each view (the Timeline following, then paused, then Fleet) is shown for a 5 s warm-up,
// then the WebKit web process's user+system time (and the window's process's) is read from
// /proc over the measured seconds (default 30) and printed as % of one core. Without a GPU
// (Xvfb here) the console chooses WebKit's shared-memory renderer; with
// WEBKIT_DISABLE_DMABUF_RENDERER=0 it keeps the DMA-BUF renderer, which composites every frame
// in Mesa's software rasteriser.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { freePort, nginxTime, scratchDir, startAndEnroll } from '../tests/gui/support.mjs';
import { KEY, newSession, startDriver } from '../tests/gui/webdriver.mjs';

const app = process.env.GATEHOUSE_APP;
if (!app) throw new Error('GATEHOUSE_APP must name the built gatehouse-console binary');
const seconds = Number(process.argv[2] ?? 30);
const bin = dirname(app);
const tick = 100; // clock ticks per second (USER_HZ)

/** The pid of the one process whose name starts with `name` (comm is cut at 15 bytes). */
function processNamed(name) {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith(name.slice(0, 15))) return pid;
    } catch {
      // gone
    }
  }
  throw new Error(`no ${name} is running`);
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** % of one core used by each of `pids` over the measured seconds, after a 5 s warm-up. */
async function measure(pids) {
  await new Promise((r) => setTimeout(r, 5000));
  const before = pids.map(cpuTicks);
  const start = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  return pids.map((pid, i) => ((cpuTicks(pid) - before[i]) / tick / elapsed) * 100);
}

const shown = ([web, app]) => `${web.toFixed(1)} % of a core (the window's process: ${app.toFixed(1)} %) over ${seconds} s`;

const dir = scratchDir('gh-bench-follow-');
const log = join(dir, 'access.log');
writeFileSync(log, '');
const port = await freePort();
const config = join(dir, 'agent.toml');
writeFileSync(
  config,
  `listen = "127.0.0.1:${port}"\nprofile = "sekha"\nstate_dir = "${join(dir, 'state')}"\n\n` +
    `[[logs]]\npath = "${log}"\nformat = "nginx_combined"\nsource = "proxy"\n`,
);
process.env.GATEHOUSE_DATA_DIR = scratchDir('gh-bench-follow-console-');
const agent = await startAndEnroll(bin, config, 'follow-one', `127.0.0.1:${port}`, dir);
let n = 0;
const writer = setInterval(() => {
  n += 1;
  const at = nginxTime(new Date());
  appendFileSync(log, `203.0.113.${n % 200} - - [${at}] "POST /mcp/tools/memory_stats HTTP/1.1" 401 35 "-" "curl/8"\n`);
}, 250);
const driver = await startDriver();
const s = await newSession(driver.base, app);
try {
  await s.until('the shell', async () => (await s.findAll('nav [data-view]')).length === 7);
  const pids = [processNamed('WebKitWebProcess'), processNamed('gatehouse-console')];
  await s.chord([KEY.CONTROL, '2']);
  await s.until('the timeline with events', async () => (await s.findAll('[data-testid=timeline-list] [role=option]')).length > 0);
  const timeline = await measure(pids);
  await s.execute(
    "const box = [...document.querySelectorAll('label')].find((l) => /Follow new events/.test(l.textContent))?.querySelector('input'); box?.click(); return !!box",
  );
  const paused = await measure(pids);
  await s.chord([KEY.CONTROL, '1']);
  const fleet = await measure(pids);
  console.log(`lines written: ${n} (4 a second)`);
  console.log(`renderer: ${process.env.WEBKIT_DISABLE_DMABUF_RENDERER ? `WEBKIT_DISABLE_DMABUF_RENDERER=${process.env.WEBKIT_DISABLE_DMABUF_RENDERER}` : "the console's choice"}`);
  console.log(`web process CPU, Timeline following live: ${shown(timeline)}`);
  console.log(`web process CPU, Timeline paused:         ${shown(paused)}`);
  console.log(`web process CPU, Fleet:                   ${shown(fleet)}`);
} finally {
  clearInterval(writer);
  await s.quit();
  driver.stop();
  agent.kill('SIGTERM');
}
