#!/usr/bin/env bash
# Time to contain, in a scripted drill: from the first failed sign-in of a brute force to the
# block verified on the host, through the window (alert → Incident… → Containment → Block →
# confirm), N times (default 5). Prints each run, the median and the operator's clicks.
# Needs root (nftables in a network namespace), a display or Xvfb, and the built app:
#   cargo build --workspace --bins && bench/contain.sh 5
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
times=()
for i in $(seq "$runs"); do
  sandbox=$(mktemp -d)
  mkdir -p "$sandbox"/{data,config,cache,runtime}
  chmod 700 "$sandbox/runtime"
  XDG_DATA_HOME=$sandbox/data XDG_CONFIG_HOME=$sandbox/config XDG_CACHE_HOME=$sandbox/cache \
    XDG_RUNTIME_DIR=$sandbox/runtime GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse drill $i" \
    GATEHOUSE_APP=$PWD/target/debug/gatehouse-console GATEHOUSE_ARTIFACTS=$out \
    dbus-run-session -- bash -c 'echo -n drill | gnome-keyring-daemon --unlock --components=secrets >/dev/null
      exec xvfb-run -a -s "-screen 0 1280x800x24" node --test tests/gui/incidents.test.mjs' >/dev/null 2>&1
  rm -rf "$sandbox" 2>/dev/null || true
  read -r ms clicks < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ms"], d["clicks"])' "$out/contain.json")
  echo "run $i: ${ms} ms, $clicks clicks"
  times+=("$ms")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "median time to contain: %.1f s over %d runs\n", m / 1000, NR}'
