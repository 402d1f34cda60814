#!/usr/bin/env bash
# Set up what is missing, start a demo fleet of three local agents (one per service profile:
# Sekha, RAE, Jelmore) on loopback, enroll them, and open the console. Demo data and keychain
# entries are kept apart from any real Gatehouse use.
#
# With no display (a server, CI), the window opens under Xvfb inside a private D-Bus session
# with its own gnome-keyring, and a screenshot is saved to artifacts/demo.png; pass
# --screenshot-and-exit to stop after it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ -z ${GATEHOUSE_DEMO_INNER:-} ]]; then
  scripts/setup.sh
  (cd ui && npm run --silent build)
  cargo build --locked --quiet --workspace --bins
  export GATEHOUSE_DEMO_DIR=${GATEHOUSE_DEMO_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/gatehouse-demo}
  echo "Demo data: $GATEHOUSE_DEMO_DIR"
  if [[ -n ${DISPLAY:-} || -n ${WAYLAND_DISPLAY:-} ]]; then
    GATEHOUSE_DEMO_INNER=desktop exec "$0" "$@"
  fi
  echo "No display: running under Xvfb with a private keychain."
  sandbox=$(mktemp -d)
  trap 'rm -rf "$sandbox" 2>/dev/null || true' EXIT
  mkdir -p "$sandbox"/{data,config,cache,runtime}
  chmod 700 "$sandbox/runtime"
  XDG_DATA_HOME=$sandbox/data XDG_CONFIG_HOME=$sandbox/config XDG_CACHE_HOME=$sandbox/cache \
    XDG_RUNTIME_DIR=$sandbox/runtime GATEHOUSE_DEMO_INNER=headless \
    dbus-run-session -- bash -c 'echo -n demo | gnome-keyring-daemon --unlock --components=secrets >/dev/null
      exec xvfb-run -a -s "-screen 0 1280x800x24" "$@"' demo "$0" "$@"
  exit $?
fi

# From here on: inside the session that will show the window.
demo=$GATEHOUSE_DEMO_DIR
bin=$root/target/debug
export GATEHOUSE_DATA_DIR=$demo/console GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse Demo"
if [[ $GATEHOUSE_DEMO_INNER == headless ]]; then
  # The private keychain is new each run, so the console's data must be too.
  rm -rf "$demo"
fi
mkdir -p "$demo/agents"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

enrolled=$("$bin/gatehouse" --json instance list 2>/dev/null || echo "[]")
to_enroll=()
for spec in sekha:17441 rae:17442 jelmore:17443; do
  profile=${spec%%:*} port=${spec##*:}
  dir=$demo/agents/$profile
  mkdir -p "$dir"
  cat >"$dir/agent.toml" <<EOF
listen = "127.0.0.1:$port"
profile = "$profile"
state_dir = "$dir/state"
EOF
  if ! grep -q "\"name\": \"$profile-demo\"" <<<"$enrolled"; then
    "$bin/gatehouse-agent" init --force --config "$dir/agent.toml" --code-file "$dir/code" >/dev/null
    to_enroll+=("$profile:$port")
  fi
  "$bin/gatehouse-agent" run --config "$dir/agent.toml" 2>>"$dir/agent.log" &
  pids+=($!)
done

for spec in sekha:17441 rae:17442 jelmore:17443; do
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${spec##*:}") 2>/dev/null && break
    sleep 0.1
  done
done

for spec in "${to_enroll[@]}"; do
  profile=${spec%%:*} port=${spec##*:}
  if "$bin/gatehouse" instance add --name "$profile-demo" --address "127.0.0.1:$port" \
    --code-file "$demo/agents/$profile/code" >/dev/null; then
    echo "Enrolled $profile-demo (agent on 127.0.0.1:$port)."
  else
    echo "Could not enroll $profile-demo; the console will show why." >&2
  fi
  rm -f "$demo/agents/$profile/code"
done

if [[ $GATEHOUSE_DEMO_INNER == desktop ]]; then
  "$bin/gatehouse-console"
  exit 0
fi

"$bin/gatehouse-console" &
pids+=($!)
sleep 6
mkdir -p "$root/artifacts"
import -window root "$root/artifacts/demo.png" && echo "Screenshot: $root/artifacts/demo.png"
[[ ${1:-} == --screenshot-and-exit ]] && exit 0
wait "${pids[-1]}"
