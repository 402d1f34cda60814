#!/usr/bin/env python3
"""Traffic for the demo fleet, through nginx: normal use with the right keys, a brute-force
burst from a few addresses every so often, and a slow key-spraying campaign. Client addresses
travel in X-Forwarded-For, which the demo's nginx trusts from loopback (real_ip_header), so
its access logs show them as a proxy behind a load balancer would.

    traffic.py --demo-dir DIR [--duration SECONDS]

Only loopback addresses are contacted; the request rate is bounded (about 8 per second).
"""

import argparse
import json
import os
import random
import signal
import time
import urllib.error
import urllib.request

NORMAL_CLIENTS = [f"10.0.{i // 200}.{1 + i % 200}" for i in range(50)]
BRUTE_FORCERS = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
SPRAYERS = ["198.51.100.20", "198.51.100.21", "198.51.100.22", "198.51.100.23"]


def request(url, method="GET", headers=None, client="10.0.0.1", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    req.add_header("X-Forwarded-For", client)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def load_keys(demo_dir):
    with open(os.path.join(demo_dir, "keys.json"), encoding="utf-8") as f:
        return json.load(f)


def normal(keys, rng):
    client = rng.choice(NORMAL_CLIENTS)
    which = rng.randrange(6)
    if which == 0:
        request(f"{keys['sekha_url']}/mcp/tools/memory_search", "POST", {"Authorization": f"Bearer {keys['sekha']}", "Content-Type": "application/json"}, client, b"{}")
    elif which == 1:
        request(f"{keys['sekha_url']}/api/v1/conversations", client=client)
    elif which == 2:
        request(f"{keys['rae_url']}/v2/compliance/circuit-breakers", headers={"X-API-Key": keys["rae"]}, client=client)
    elif which == 3:
        request(f"{keys['rae_url']}/v2/memories/search", client=client)
    elif which == 4:
        request(f"{keys['jelmore_url']}/api/v1/v1/sessions", headers={"X-API-Key": keys["jelmore_client"]}, client=client)
    else:
        request(f"{keys['jelmore_url']}/health", client=client)


def wrong_key(keys, service, client, rng):
    guess = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(24))
    if service == "sekha":
        return request(f"{keys['sekha_url']}/mcp/tools/memory_stats", "POST", {"Authorization": f"Bearer {guess}"}, client, b"{}")
    if service == "rae":
        return request(f"{keys['rae_url']}/v2/compliance/circuit-breakers", headers={"X-API-Key": guess}, client=client)
    return request(f"{keys['jelmore_url']}/api/v1/v1/sessions", headers={"X-API-Key": guess}, client=client)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", required=True)
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until stopped)")
    parser.add_argument("--burst-every", type=float, default=45)
    parser.add_argument("--spray-every", type=float, default=6)
    args = parser.parse_args()
    keys = load_keys(args.demo_dir)
    rng = random.Random(7)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    started = time.monotonic()
    next_burst = started + 5
    next_spray = started + 2
    burst_left, burst_client, burst_service = 0, None, None
    while not stop and (args.duration == 0 or time.monotonic() - started < args.duration):
        now = time.monotonic()
        normal(keys, rng)
        if now >= next_burst:
            burst_left = 25
            burst_client = rng.choice(BRUTE_FORCERS)
            burst_service = rng.choice(["sekha", "rae", "jelmore"])
            next_burst = now + args.burst_every
        if burst_left > 0:
            wrong_key(keys, burst_service, burst_client, rng)
            burst_left -= 1
        if now >= next_spray:
            wrong_key(keys, "jelmore", rng.choice(SPRAYERS), rng)
            next_spray = now + args.spray_every
        time.sleep(0.12)


if __name__ == "__main__":
    main()
