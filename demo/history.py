#!/usr/bin/env python3
"""Weeks of past proxy traffic for the demo fleet, written into nginx's access logs before
nginx starts, so the heatmaps have a history to show: office-hours use, a nightly scanner,
and brute-force campaigns on some days.

    history.py --demo-dir DIR [--days 21] [--seed 7]

Writes only the demo's own log files, and only when they do not exist yet.
"""

import argparse
import json
import os
import random
import time

OFFICE = [f"10.0.{i // 200}.{1 + i % 200}" for i in range(50)]
SCANNERS = ["192.0.2.45", "192.0.2.46"]
CAMPAIGNS = ["203.0.113.77", "203.0.113.78", "198.51.100.90", "198.51.100.91", "203.0.113.200"]
PATHS = {
    "sekha": ["/mcp/tools/memory_search", "/mcp/tools/memory_store", "/api/v1/conversations"],
    "rae": ["/v2/memories/search", "/v2/compliance/circuit-breakers"],
    "jelmore": ["/api/v1/v1/sessions", "/health"],
}


def combined(ip, t, method, path, status):
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 35 "-" "python-requests/2.32.3"\n'


def as_json(ip, t, method, path, status):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))
    return json.dumps({
        "time": stamp, "remote_addr": ip, "request_method": method, "request_uri": path,
        "status": status, "body_bytes_sent": 35, "request_time": 0.004,
        "http_user_agent": "python-requests/2.32.3",
    }) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-dir", required=True)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = int(time.time())
    start = now - args.days * 86400
    files = {
        "sekha": (os.path.join(args.demo_dir, "logs", "sekha.access.log"), combined),
        "rae": (os.path.join(args.demo_dir, "logs", "rae.access.json"), as_json),
        "jelmore": (os.path.join(args.demo_dir, "logs", "jelmore.access.log"), combined),
    }
    lines = {name: [] for name in files}
    for hour in range(start // 3600, now // 3600 - 1):
        t0 = hour * 3600
        day, hod = time.gmtime(t0).tm_wday, time.gmtime(t0).tm_hour
        busy = day < 5 and 7 <= hod <= 18
        for service in files:
            # Normal use: busier in office hours, a few wrong keys now and then.
            for _ in range(rng.randint(20, 40) if busy else rng.randint(0, 4)):
                status = 401 if rng.random() < 0.03 else 200
                lines[service].append((t0 + rng.randrange(3600), rng.choice(OFFICE), "POST", rng.choice(PATHS[service]), status))
            # A scanner that tries a handful of keys every night at 02:00-04:00.
            if 2 <= hod <= 3:
                for _ in range(rng.randint(3, 9)):
                    lines[service].append((t0 + rng.randrange(3600), rng.choice(SCANNERS), "GET", PATHS[service][0], 401))
        # Campaigns: a few evenings, hundreds of failures from one address against one service.
        if rng.random() < 0.03 and not busy:
            service = rng.choice(list(files))
            ip = rng.choice(CAMPAIGNS)
            for i in range(rng.randint(150, 600)):
                lines[service].append((t0 + min(3599, i * 5 + rng.randrange(5)), ip, "POST", PATHS[service][0], 401))
    for service, (path, fmt) in files.items():
        if os.path.exists(path):
            continue
        with open(path, "w", encoding="utf-8") as f:
            for t, ip, method, p, status in sorted(lines[service]):
                f.write(fmt(ip, t, method, p, status))
        print(f"{path}: {len(lines[service])} lines of history")


if __name__ == "__main__":
    main()
