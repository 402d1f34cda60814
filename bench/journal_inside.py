#!/usr/bin/env python3
"""Inside the benchmark container (bench/journal.sh): the agent following a unit's journal at
RATE lines/s, then the same lines from a file; prints CPU % and peak RSS of each (the agent
and, for the journal, its journalctl child), and checks every line was stored."""

import json, os, sqlite3, subprocess, sys, time

RATE = int(os.environ.get("RATE", "2000"))
SECONDS = int(os.environ.get("SECONDS_", "10"))
AGENT = "/usr/bin/gatehouse-agent"
HZ = os.sysconf("SC_CLK_TCK")

GEN = r'''
import sys, time, datetime
rate, seconds, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
f = sys.stdout if out == "-" else open(out, "a", buffering=1)
start = time.monotonic(); n = 0
while n < rate * seconds:
    due = start + n / rate
    now = time.monotonic()
    if due > now: time.sleep(due - now)
    t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for _ in range(20):
        f.write(f"{t}  INFO sekha_controller: request {n} handled in 3 ms\n"); n += 1
    f.flush()
'''

def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout

def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

def hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0

def children(pid):
    # journalctl is started from the log reader's thread: look in every thread's children.
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out

def run(mode):
    state = f"/var/lib/bench-{mode}"
    sh("rm", "-rf", state)
    os.makedirs(state, mode=0o700)
    log = "/var/log/bench.log"
    if mode == "journal":
        logs = '[[logs]]\njournal_unit = "bench-gen.service"\nformat = "sekha_tracing"\nsource = "service"\n'
    else:
        open(log, "w").close()
        logs = f'[[logs]]\npath = "{log}"\nformat = "sekha_tracing"\nsource = "service"\n'
    config = f"{state}/agent.toml"
    open(config, "w").write(f'listen = "127.0.0.1:0"\nprofile = "sekha"\nstate_dir = "{state}"\n{logs}')
    sh(AGENT, "init", "--config", config)
    sh("systemd-run", "--unit", f"bench-agent-{mode}", "--collect", "-p", "Type=exec",
       "--setenv=GATEHOUSE_AGENT_LOG=warn", AGENT, "run", "--config", config)
    time.sleep(1.5)
    pid = int(sh("systemctl", "show", "-p", "MainPID", "--value", f"bench-agent-{mode}").strip())
    out = "-" if mode == "journal" else log
    open("/tmp/gen.py", "w").write(GEN)
    # journald's default rate limit (10,000 lines per 30 s per unit) would drop lines.
    sh("systemd-run", "--unit", "bench-gen", "--collect", "-p", "Type=exec", "-p", "LogRateLimitIntervalSec=0",
       "/usr/bin/python3", "/tmp/gen.py", str(RATE), str(SECONDS), out)
    time.sleep(1)
    procs = [pid] + children(pid)
    before = {p: cpu_ticks(p) for p in procs}
    t0 = time.monotonic()
    time.sleep(SECONDS - 2)
    used = sum(cpu_ticks(p) - before[p] for p in procs if os.path.exists(f"/proc/{p}"))
    wall = time.monotonic() - t0
    # Let the generator finish and the agent catch up, then count what it stored.
    deadline = time.monotonic() + 20
    want = RATE * SECONDS
    stored = 0
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{state}/events.sqlite3?mode=ro", uri=True)
        stored = db.execute("SELECT COUNT(*) FROM events WHERE source = 'service'").fetchone()[0]
        db.close()
        if stored >= want:
            break
        time.sleep(0.5)
    peak = {p: hwm_kib(p) for p in procs if os.path.exists(f"/proc/{p}")}
    in_journal = None
    if mode == "journal":
        in_journal = sum(1 for _ in subprocess.run(["journalctl", "_SYSTEMD_UNIT=bench-gen.service", "-o", "cat"],
                                                   capture_output=True, text=True).stdout.splitlines())
    subprocess.run(["systemctl", "stop", f"bench-agent-{mode}", "bench-gen"], capture_output=True)
    return {
        "mode": mode,
        "cpu_percent": round(100.0 * used / HZ / wall, 1),
        "peak_rss_mib_agent": round(peak.get(pid, 0) / 1024, 1),
        "peak_rss_mib_children": round(sum(v for p, v in peak.items() if p != pid) / 1024, 1),
        "lines_written": want,
        "lines_stored": stored,
        "lines_in_journal": in_journal,
    }

results = [run("journal"), run("file")]
print(f"agent following {RATE} lines/s for {SECONDS} s (CPU % of one core over the run, peak RSS):")
for r in results:
    extra = f" + journalctl {r['peak_rss_mib_children']} MiB" if r["mode"] == "journal" else ""
    print(
        f"{r['mode']:>8}: {r['cpu_percent']:5.1f} % CPU, peak RSS agent {r['peak_rss_mib_agent']} MiB{extra}; "
        f"{r['lines_stored']} of {r['lines_written']} lines stored"
    )
print(json.dumps(results))
