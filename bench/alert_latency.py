#!/usr/bin/env python3
"""From a failed sign-in written on a host to the alert in the console, on the demo fleet.

Starts the headless demo (fixture services behind nginx, agents, the console under Xvfb),
then runs a scripted burst per trial: five wrong keys against Sekha through nginx from a new
address, which is what Sekha's brute-force rule (5 in 10 minutes) fires on. The latency is
the alert's creation time in the console minus the moment the fifth response (and with it
nginx's log line) was complete; both clocks are this machine's.

    bench/alert_latency.py [--trials 20]
"""

import argparse
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wrong_key(ip):
    req = urllib.request.Request("http://127.0.0.1:18081/mcp/tools/memory_stats", method="POST", data=b"{}")
    req.add_header("X-Forwarded-For", ip)
    req.add_header("Authorization", "Bearer not-the-key-not-the-key-not-the-key")
    req.add_header("Content-Type", "application/json")
    try:
        urllib.request.urlopen(req, timeout=2).close()
    except urllib.error.HTTPError as e:
        if e.code != 401:
            raise RuntimeError(f"expected 401, got {e.code}") from e


def query(db, sql, args=()):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    demo_dir = tempfile.mkdtemp(prefix="gatehouse-latency-")
    env = dict(os.environ, GATEHOUSE_DEMO_DIR=demo_dir)
    env.pop("DISPLAY", None)  # headless: the demo brings its own Xvfb and keychain
    demo = subprocess.Popen([os.path.join(ROOT, "scripts", "demo.sh")], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    console = os.path.join(demo_dir, "console", "gatehouse.sqlite3")
    events = os.path.join(demo_dir, "console", "events.sqlite3")
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            synced = query(events, "SELECT COUNT(*) FROM sync_state WHERE last_sync IS NOT NULL")
            if synced and synced[0][0] >= 3:
                break
            if demo.poll() is not None:
                raise SystemExit("the demo stopped before the console synced; run scripts/demo.sh to see why")
            time.sleep(0.5)
        else:
            raise SystemExit("the console did not sync the demo fleet within 10 minutes")
        time.sleep(5)  # let the history backfill settle
        rng = random.Random(3)
        latencies = []
        for trial in range(args.trials):
            ip = f"100.64.{trial // 200}.{1 + trial % 200}"
            for _ in range(5):
                wrong_key(ip)
            written = time.time()
            found = None
            until = written + 15
            while time.time() < until and not found:
                found = query(console, "SELECT created_us FROM alerts WHERE subject = ? AND rule_id = 'brute-force'", (ip,))
                if not found:
                    time.sleep(0.02)
            if not found:
                print(f"trial {trial}: no alert within 15 s")
                continue
            latency = found[0][0] / 1e6 - written
            latencies.append(latency)
            print(f"trial {trial:2}: {ip:15} alert after {latency * 1000:6.0f} ms")
            time.sleep(rng.uniform(0.2, 1.2))
        if latencies:
            latencies.sort()
            p90 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))]
            print(f"failed sign-in to alert: median {statistics.median(latencies) * 1000:.0f} ms, "
                  f"p90 {p90 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms over {len(latencies)} bursts "
                  f"(goal: median under 250 ms, p90 under 500 ms)")
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)


if __name__ == "__main__":
    main()
