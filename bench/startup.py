#!/usr/bin/env python3
"""Time to first paint and idle memory of the console, side by side with a bare Tauri window.

Both binaries are built from this workspace in release mode and run alternately under one
Xvfb server and one D-Bus session with gnome-keyring. First paint is the moment the page
reports its second animation frame after mount (the app prints `first-paint` on stdout when
GATEHOUSE_REPORT_FIRST_PAINT is set); memory is the sum of PSS (/proc/PID/smaps_rollup) over
the app and every process it started (WebKit's web and network processes), 10 s after launch.

    python3 bench/startup.py [--runs 5] [--idle 10] [--no-build]

Run it on a quiet machine; it prints medians and the ratios against the bare window.
"""

import argparse
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build() -> None:
    subprocess.run(["npm", "run", "--silent", "build"], cwd=ROOT / "ui", check=True)
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--quiet",
         "--bin", "gatehouse-console", "--example", "bare_window"],
        cwd=ROOT, check=True,
    )


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name may contain spaces; the ppid follows the closing paren.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run(binary: Path, idle: float, env: dict) -> tuple[float, float, dict]:
    data = tempfile.mkdtemp(prefix="gh-bench-")
    run_env = dict(env, GATEHOUSE_DATA_DIR=data, GATEHOUSE_REPORT_FIRST_PAINT="1")
    start = time.monotonic()
    proc = subprocess.Popen([str(binary)], env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first_paint = None
    buffer = b""
    deadline = start + 30
    while first_paint is None and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
            if b"first-paint" in buffer:
                first_paint = (time.monotonic() - start) * 1000
    if first_paint is None:
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"{binary.name} never reported its first paint")
    time.sleep(max(0.0, idle - (time.monotonic() - start)))
    per_process = {}
    for pid in descendants(proc.pid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        per_process[name] = per_process.get(name, 0) + pss_kib(pid)
    total = sum(per_process.values()) / 1024
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    shutil.rmtree(data, ignore_errors=True)
    return first_paint, total, per_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()

    if "GATEHOUSE_BENCH_INNER" not in os.environ:
        if not args.no_build:
            build()
        # Re-run ourselves inside a private D-Bus session (with an unlocked gnome-keyring)
        # and an Xvfb server, with XDG dirs in a temp folder.
        sandbox = tempfile.mkdtemp(prefix="gh-bench-xdg-")
        env = dict(os.environ, GATEHOUSE_BENCH_INNER="1")
        for d in ("data", "config", "cache", "runtime"):
            os.makedirs(f"{sandbox}/{d}", mode=0o700)
        env.update(XDG_DATA_HOME=f"{sandbox}/data", XDG_CONFIG_HOME=f"{sandbox}/config",
                   XDG_CACHE_HOME=f"{sandbox}/cache", XDG_RUNTIME_DIR=f"{sandbox}/runtime",
                   GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse bench")
        inner = (f"echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; "
                 f"exec xvfb-run -a -s '-screen 0 1280x800x24' {sys.executable} {__file__} "
                 f"--runs {args.runs} --idle {args.idle} --no-build")
        code = subprocess.call(["dbus-run-session", "--", "sh", "-c", inner], env=env)
        shutil.rmtree(sandbox, ignore_errors=True)
        sys.exit(code)

    binaries = {
        "bare Tauri window": ROOT / "target/release/examples/bare_window",
        "Gatehouse console": ROOT / "target/release/gatehouse-console",
    }
    results = {name: ([], [], {}) for name in binaries}
    one_run(binaries["bare Tauri window"], 2, os.environ)  # warm the page cache once
    for i in range(args.runs):
        for name, binary in binaries.items():
            paint, pss, per = one_run(binary, args.idle, os.environ)
            results[name][0].append(paint)
            results[name][1].append(pss)
            results[name][2].update(per)
            print(f"run {i + 1}: {name:<18} first paint {paint:7.0f} ms   PSS {pss:6.1f} MB",
                  flush=True)

    print(f"\nmedians over {args.runs} runs, PSS {args.idle:.0f} s after launch:")
    base_paint = statistics.median(results["bare Tauri window"][0])
    base_pss = statistics.median(results["bare Tauri window"][1])
    for name, (paints, psses, per) in results.items():
        paint, pss = statistics.median(paints), statistics.median(psses)
        print(f"  {name:<18} first paint {paint:6.0f} ms ({paint / base_paint:4.2f}x)   "
              f"PSS {pss:6.1f} MB ({pss / base_pss:4.2f}x)   processes: {', '.join(sorted(per))}")


if __name__ == "__main__":
    main()
