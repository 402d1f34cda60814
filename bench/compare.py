#!/usr/bin/env python3
"""The benchmarks of this checkout side by side with those of an older commit, in one run.

    python3 bench/compare.py OLD [--rounds 2] [--events 2000000] [--agents 50] [--runs 3]
                             [--old-target DIR] [--no-build] [--only fleet ...]

OLD is checked out into a temporary worktree and built in release mode into a target
directory of its own (`--old-target`, kept between runs so a second comparison builds
nothing); this checkout builds into `target/`. Each benchmark then runs for the old build and
the new one in turn (each round starting with the other side), `--rounds` times, and the
table gives each figure's median per side and the change; `--only` runs some of them. The benchmarks are the programs under `bench/` as each commit has them:

  parse     bench/parse.rs     lines/s per format (higher is better)
  ingest    bench/ingest.rs    events/s, then the timeline's first page per filter (ms)
  heatmap   bench/heatmap.rs   the slowest chart's median (ms)
  fleet     bench/fleet.rs     refresh of N agents on loopback, warm and cold (ms)
  startup   bench/startup.py   first paint (ms) and PSS 10 s after launch (MB)

Run it on a quiet machine; figures are as noisy as the machine is.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

# (name, better, pattern): `better` is "higher" or "lower"; the pattern's first group is the
# figure.
PATTERNS = {
    "parse": [
        (f"parse {name} (M lines/s)", "higher",
         rf"^\s+{re.escape(name)}\s+\d+ lines .*?([\d.]+) M lines/s")
        for name in ["nginx combined", "structlog JSON", "nginx JSON", "sekha tracing",
                     "pattern (nginx)"]
    ],
    "ingest": [("ingest (events/s)", "higher", r"^ingest: \d+ events in [\d.]+ s = (\d+) events/s")]
    + [
        (f"first page, {name} (ms)", "lower", rf"^\s+{re.escape(name)}\s+([\d.]+) ms")
        for name in ["no filter", "instance", "failed auth", "one address", "path prefix",
                     "free text", "last hour"]
    ],
    "heatmap": [("heatmap, slowest chart median (ms)", "lower",
                 r"^slowest chart \(median\): ([\d.]+) ms")],
    "fleet": [
        ("fleet refresh, warm median (ms)", "lower", r"refresh all \d+ .*?warm median ([\d.]+) ms"),
        ("fleet refresh, cold (ms)", "lower", r"refresh all \d+ .*?cold .*? ([\d.]+) ms$"),
        ("/v1/info round trip p50 (ms)", "lower", r"/v1/info round trip .*?p50 ([\d.]+) ms"),
    ],
}


def sh(cmd, cwd, env=None, quiet=False):
    print("+", " ".join(map(str, cmd)), f"(in {cwd})", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, text=True,
                         stdout=subprocess.PIPE if quiet else None)
    return out.stdout


def build(tree: Path, target: Path) -> None:
    """Everything the benchmarks run, in release mode, for the source tree at `tree`."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    if not (tree / "ui/node_modules").exists():
        sh(["npm", "ci", "--silent", "--no-audit", "--no-fund"], tree / "ui")
    sh(["npm", "run", "--silent", "build"], tree / "ui")
    for args in (["-p", "gatehouse-events", "--example", "parse"],
                 ["-p", "gatehouse-core", "--example", "ingest", "--example", "heatmap",
                  "--example", "fleet"],
                 ["-p", "gatehouse-agent", "--bin", "gatehouse-agent"],
                 ["--bin", "gatehouse-console", "--example", "bare_window"]):
        sh(["cargo", "build", "--release", "--locked", "--quiet", *args], tree, env)


def keyring_env(sandbox: Path) -> dict:
    for d in ("data", "config", "cache", "runtime"):
        (sandbox / d).mkdir(mode=0o700, exist_ok=True)
    return dict(os.environ, XDG_DATA_HOME=f"{sandbox}/data", XDG_CONFIG_HOME=f"{sandbox}/config",
                XDG_CACHE_HOME=f"{sandbox}/cache", XDG_RUNTIME_DIR=f"{sandbox}/runtime",
                GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse bench")


def in_session(cmd, cwd, display=False) -> str:
    """`cmd` inside a private D-Bus session with an unlocked gnome-keyring (and Xvfb)."""
    sandbox = Path(tempfile.mkdtemp(prefix="gh-compare-"))
    try:
        inner = "echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; "
        inner += ("exec xvfb-run -a -s '-screen 0 1280x800x24' \"$@\"" if display else 'exec "$@"')
        return sh(["dbus-run-session", "--", "sh", "-c", inner, "session", *cmd], cwd,
                  keyring_env(sandbox), quiet=True)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def figures(bench: str, output: str) -> dict:
    found = {}
    for name, _, pattern in PATTERNS[bench]:
        m = re.search(pattern, output, re.MULTILINE)
        if m:
            found[name] = float(m.group(1))
    return found


def run_once(bench: str, tree: Path, target: Path, args) -> dict:
    ex = target / "release/examples"
    if bench == "parse":
        out = sh([ex / "parse", str(args.parse_lines)], tree, quiet=True)
    elif bench == "ingest":
        out = sh([ex / "ingest", str(args.events)], tree, quiet=True)
    elif bench == "heatmap":
        out = sh([ex / "heatmap"], tree, quiet=True)
    elif bench == "fleet":
        # The fleet benchmark starts the `gatehouse-agent` built beside it.
        out = in_session([ex / "fleet", str(args.agents)], tree)
    else:
        raise ValueError(bench)
    print(out, file=sys.stderr, flush=True)
    return figures(bench, out)


def startup(old_target: Path, new_target: Path, args) -> dict:
    """First paint and PSS of both consoles, alternately, under one Xvfb and D-Bus session."""
    script = f"""
import os, statistics, sys
sys.path.insert(0, {str(ROOT / 'bench')!r})
import startup
from pathlib import Path
startup.one_run(Path({str(new_target / 'release/examples/bare_window')!r}), 2, os.environ)
for i in range({args.runs}):
    for side, target in (("old", {str(old_target)!r}), ("new", {str(new_target)!r})):
        paint, pss, _ = startup.one_run(Path(target) / "release/gatehouse-console", {args.idle}, os.environ)
        print(f"startup {{side}} first paint {{paint:.1f}} PSS {{pss:.1f}}", flush=True)
"""
    out = in_session([sys.executable, "-c", script], ROOT, display=True)
    print(out, file=sys.stderr, flush=True)
    result = {"old": {}, "new": {}}
    for side in ("old", "new"):
        paints = [float(m) for m in re.findall(rf"startup {side} first paint ([\d.]+)", out)]
        psses = [float(m) for m in re.findall(rf"startup {side} first paint [\d.]+ PSS ([\d.]+)", out)]
        if paints:
            result[side]["console first paint (ms)"] = statistics.median(paints)
            result[side][f"console PSS {args.idle:.0f} s after launch (MB)"] = statistics.median(psses)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--parse-lines", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="startup runs per side")
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--old-target", default=str(Path(tempfile.gettempdir()) / "gatehouse-compare-target"))
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--only", action="append", choices=["parse", "ingest", "heatmap", "fleet", "startup"],
                        help="run only this benchmark (repeatable); all of them by default")
    args = parser.parse_args()

    old_commit = sh(["git", "rev-parse", "--short", args.old], ROOT, quiet=True).strip()
    new_commit = sh(["git", "rev-parse", "--short", "HEAD"], ROOT, quiet=True).strip()
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"], ROOT, quiet=True).strip()
    old_tree = Path(tempfile.gettempdir()) / f"gatehouse-compare-{old_commit}"
    old_target, new_target = Path(args.old_target), ROOT / "target"
    if not old_tree.exists():
        sh(["git", "worktree", "add", "--force", "--detach", str(old_tree), old_commit], ROOT)
    if not args.no_build:
        build(old_tree, old_target)
        build(ROOT, new_target)

    results = {"old": {}, "new": {}}
    order = []
    chosen = args.only or ["parse", "ingest", "heatmap", "fleet", "startup"]
    for bench in [b for b in ("parse", "ingest", "heatmap", "fleet") if b in chosen]:
        for round_ in range(args.rounds):
            # Each round changes which side goes first, so neither always runs on a machine
            # the other has just loaded (50 agents exiting, caches).
            sides = [("old", old_tree, old_target), ("new", ROOT, new_target)]
            for side, tree, target in sides if round_ % 2 == 0 else sides[::-1]:
                for name, value in run_once(bench, tree, target, args).items():
                    results[side].setdefault(name, []).append(value)
                    if name not in order:
                        order.append(name)
    better = {name: b for patterns in PATTERNS.values() for name, b, _ in patterns}
    for side, found in (startup(old_target, new_target, args) if "startup" in chosen else {}).items():
        for name, value in found.items():
            results[side].setdefault(name, []).append(value)
            if name not in order:
                order.append(name)
            better[name] = "lower"

    print(f"\n{'figure':<44} {'old ' + old_commit:>14} {'new ' + new_commit + ('+' if dirty else ''):>14}  change")
    worst = 0.0
    for name in order:
        old, new = results["old"].get(name), results["new"].get(name)
        if not old or not new:
            print(f"{name:<44} {'-' if not old else statistics.median(old):>14} "
                  f"{'-' if not new else statistics.median(new):>14}  (not measured on both)")
            continue
        o, n = statistics.median(old), statistics.median(new)
        change = (n - o) / o * 100 if o else 0.0
        # Positive is worse, whichever way the figure is read.
        regression = change if better[name] == "lower" else -change
        worst = max(worst, regression)
        mark = "  worse" if regression > 10 else ""
        print(f"{name:<44} {o:>14.2f} {n:>14.2f}  {change:+6.1f} %{mark}")
    print(f"\nmedians of {args.rounds} rounds ({args.runs} startup runs per side); "
          f"ingest and first page at {args.events:,} events; fleet of {args.agents} agents; "
          f"largest regression {worst:.1f} %")


if __name__ == "__main__":
    main()
