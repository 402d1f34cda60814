#!/usr/bin/env bash
# Fleet benchmark (see bench/fleet.rs): builds in release mode, then runs with N agents
# (default 100) inside a private D-Bus session with gnome-keyring unlocked.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet -p gatehouse-agent --bin gatehouse-agent
cargo build --release --locked --quiet -p gatehouse-core --example fleet
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox" 2>/dev/null || true' EXIT
mkdir -p "$sandbox"/{data,runtime}
chmod 700 "$sandbox/runtime"
XDG_DATA_HOME=$sandbox/data XDG_RUNTIME_DIR=$sandbox/runtime dbus-run-session -- sh -c \
  'echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"' \
  fleet target/release/examples/fleet "${1:-100}"
