#!/usr/bin/env bash
# Set up what is missing and start the console with its demo data, kept apart from any real
# Gatehouse data and keychain entries.
#
# With no display (a server, CI), the window opens under Xvfb and a screenshot is saved to
# artifacts/demo.png; pass --screenshot-and-exit to stop after it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh
(cd ui && npm run --silent build)
cargo build --locked --quiet --bin gatehouse-console

demo_dir=${GATEHOUSE_DEMO_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/gatehouse-demo}
mkdir -p "$demo_dir"
export GATEHOUSE_DATA_DIR=$demo_dir/console GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse Demo"
app=$root/target/debug/gatehouse-console
echo "Demo data: $demo_dir"

if [[ -n ${DISPLAY:-} || -n ${WAYLAND_DISPLAY:-} ]]; then
  exec "$app"
fi

echo "No display: running the console under Xvfb."
mkdir -p "$root/artifacts"
exec xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  "$1" & app=$!
  trap "kill $app 2>/dev/null" EXIT
  sleep 6
  import -window root "$2/artifacts/demo.png" && echo "Screenshot: $2/artifacts/demo.png"
  [[ $3 == --screenshot-and-exit ]] && exit 0
  wait $app' demo "$app" "$root" "${1:-}"
