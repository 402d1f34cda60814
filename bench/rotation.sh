#!/usr/bin/env bash
# Key rotation end to end on N Sekha fixtures with agents (default 50), in a private D-Bus
# session with its own gnome-keyring, so no real keychain is touched.
#
#     bench/rotation.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked --quiet -p gatehouse-core --example rotation
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
mkdir -p "$sandbox"/{data,config,cache,runtime}
chmod 700 "$sandbox/runtime"
export XDG_DATA_HOME=$sandbox/data XDG_CONFIG_HOME=$sandbox/config \
  XDG_CACHE_HOME=$sandbox/cache XDG_RUNTIME_DIR=$sandbox/runtime
dbus-run-session -- bash -c '
  echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec "$@"' bench target/release/examples/rotation "${1:-50}"
