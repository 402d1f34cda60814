#!/usr/bin/env bash
# Set up what is missing, start the demo fleet and open the console on it. The fleet: three
# small fixture services that behave like Sekha, RAE and Jelmore (demo/fixture_service.py),
# nginx in front of them writing access logs, one Gatehouse agent beside each following the
# service's and nginx's logs, enrolled over mutual TLS, and a traffic generator (normal use,
# brute-force bursts, slow key spraying). All on loopback. Demo data and keychain entries are
# kept apart from any real Gatehouse use.
#
# With no display (a server, CI), everything runs under Xvfb inside a private D-Bus session
# with its own gnome-keyring, and a screenshot of the timeline is saved to artifacts/demo.png;
# pass --screenshot-and-exit to stop after it.
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
mkdir -p "$demo"/{agents,services,logs,nginx/tmp}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_services 2>/dev/null || true
  [[ $(id -u) -eq 0 ]] && ip netns delete gatehouse-demo 2>/dev/null
  true
}
trap cleanup EXIT
# A stop by signal (systemd, a terminal closed, kill) cleans up too: bash runs the EXIT trap
# on `exit`, not when a signal ends it.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

if [[ $GATEHOUSE_DEMO_INNER == headless ]]; then
  # The session bus was started before Xvfb, so a notification daemon it activated would not
  # know the display ("Cannot open X11 display"). Tell the bus, and start dunst on it now.
  dbus-update-activation-environment DISPLAY XAUTHORITY 2>/dev/null || true
  if command -v dunst >/dev/null; then
    dunst >/dev/null 2>&1 &
    pids+=($!)
  fi
fi

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "Nothing answered on 127.0.0.1:$1" >&2
}

# The services, with keys of their own, kept in their config files as the real ones are.
if [[ ! -f $demo/keys.json ]]; then
  mkdir -p "$demo/services"/{sekha,rae,jelmore}
  python3 - "$demo" <<'PY'
import json, os, secrets, sys
demo = sys.argv[1]
k = {name: secrets.token_urlsafe(32) for name in ("sekha", "rae", "admin", "client")}
def write(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
write(f"{demo}/services/sekha/config.toml", f'mcp_api_key = "{k["sekha"]}"\n\n[server]\nport = 18181\n')
write(f"{demo}/services/rae/.env", f'API_KEY={k["rae"]}\nENABLE_API_KEY_AUTH=true\n')
write(f"{demo}/services/jelmore/.env", f'API_KEY_ADMIN={k["admin"]}\nAPI_KEY_CLIENT={k["client"]}\nPOSTGRES_PASSWORD=demo\n')
write(f"{demo}/keys.json", json.dumps({
    "sekha": k["sekha"], "rae": k["rae"], "jelmore_client": k["client"],
    "sekha_url": "http://127.0.0.1:18081", "rae_url": "http://127.0.0.1:18082",
    "jelmore_url": "http://127.0.0.1:18083"}))
PY
fi
# Each service is started (and later restarted by its agent, for key rotation) the same way:
# restart_fixture.sh stops it by its pid file and starts it again.
restart_cmd() { # profile port [more fixture arguments]
  local profile=$1 port=$2
  shift 2
  echo "sh $root/demo/restart_fixture.sh $demo/services/$profile.pid --profile $profile --port $port" \
    "--workdir $demo/services/$profile --log $demo/logs/$profile.log $*"
}
stop_services() {
  for pidfile in "$demo"/services/*.pid; do
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}
stop_services
sh -c "$(restart_cmd sekha 18181)"
sh -c "$(restart_cmd rae 18182)"
sh -c "$(restart_cmd jelmore 18183 --access-log "$demo/logs/jelmore.uvicorn.log")"

# Three weeks of past proxy traffic, so the heatmaps have a history (first run only).
python3 "$root/demo/history.py" --demo-dir "$demo" >/dev/null

# A certificate for the TLS side of nginx, and backups for the compliance checks: Sekha's
# encrypted with gpg as its guide says, RAE's a plain copy (a finding).
if [[ ! -f $demo/nginx/tls.crt ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
    -keyout "$demo/nginx/tls.key" -out "$demo/nginx/tls.crt" 2>/dev/null
fi
mkdir -p "$demo/backups"/{sekha,rae}
today=$(date -u +%F)
if [[ ! -f $demo/backups/sekha/sekha-$today.db.gpg ]]; then
  gnupg=$(mktemp -d)
  printf 'SQLite format 3\0 demo conversations\n' >"$gnupg/sekha.db"
  GNUPGHOME=$gnupg gpg --batch --yes --pinentry-mode loopback --passphrase demo-backup \
    --symmetric -o "$demo/backups/sekha/sekha-$today.db.gpg" "$gnupg/sekha.db" 2>/dev/null || true
  rm -rf "$gnupg"
  printf 'SQLite format 3\0 demo memories\n' >"$demo/backups/rae/rae-$today.db"
fi

# nginx in front, trusting X-Forwarded-For from loopback as it would behind a load balancer.
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root root;"
sed -e "s|@DEMO@|$demo|g" -e "s|@USER@|$user_line|" "$root/demo/nginx.conf.in" >"$demo/nginx/nginx.conf"
nginx -p "$demo/nginx" -c "$demo/nginx/nginx.conf" &
pids+=($!)

if [[ $(id -u) -eq 0 ]]; then
  ip netns add gatehouse-demo 2>/dev/null || true
fi

# One agent per service, following the service's own log and nginx's.
write_agent() { # profile agent-port service-port log|format|source...
  local profile=$1 port=$2 service_port=$3 dir=$demo/agents/$1 log
  shift 3
  mkdir -p "$dir"
  {
    printf 'listen = "127.0.0.1:%s"\nprofile = "%s"\nstate_dir = "%s"\n' "$port" "$profile" "$dir/state"
    printf 'service_url = "http://127.0.0.1:%s/health"\n' "$service_port"
    printf 'service_dir = "%s"\n' "$demo/services/$profile"
    printf 'restart_command = ["sh", "-c", "%s"]\n' "$(restart_cmd "$profile" "$service_port" ${extra_args:-})"
    printf '\n[checks]\npublic_url = "%s"\nservice_user = "%s"\n' "$public_url" "$(id -un)"
    [[ -d $demo/backups/$profile ]] && printf 'backup_dir = "%s"\n' "$demo/backups/$profile"
    # Blocks from the demo go to a network namespace of their own, never this machine's
    # firewall (without root the agent says it lacks CAP_NET_ADMIN instead).
    if [[ $(id -u) -eq 0 ]]; then
      printf '\n[firewall]\nnft_command = ["ip", "netns", "exec", "gatehouse-demo", "nft"]\n'
    fi
    for log in "$@"; do
      IFS='|' read -r file format source <<<"$log"
      printf '\n[[logs]]\npath = "%s"\nformat = "%s"\nsource = "%s"\n' "$demo/logs/$file" "$format" "$source"
    done
  } >"$dir/agent.toml"
}
public_url=https://localhost:18441/health \
  write_agent sekha 17441 18181 "sekha.log|sekha_tracing|service" "sekha.access.log|nginx_combined|proxy"
public_url=https://localhost:18442/health \
  write_agent rae 17442 18182 "rae.log|structlog|service" "rae.access.json|nginx_json|proxy"
public_url=http://127.0.0.1:18083/health extra_args="--access-log $demo/logs/jelmore.uvicorn.log" \
  write_agent jelmore 17443 18183 "jelmore.log|structlog|service" "jelmore.uvicorn.log|uvicorn_access|access" \
  "jelmore.access.log|nginx_combined|proxy"

enrolled=$("$bin/gatehouse" --json instance list 2>/dev/null || echo "[]")
to_enroll=()
for spec in sekha:17441 rae:17442 jelmore:17443; do
  profile=${spec%%:*}
  dir=$demo/agents/$profile
  if ! grep -q "\"name\": \"$profile-demo\"" <<<"$enrolled"; then
    "$bin/gatehouse-agent" init --force --config "$dir/agent.toml" --code-file "$dir/code" >/dev/null
    to_enroll+=("$spec")
  fi
  "$bin/gatehouse-agent" run --config "$dir/agent.toml" 2>>"$dir/agent.log" &
  pids+=($!)
done
for port in 18081 18082 18083 18441 18442 17441 17442 17443; do wait_port "$port"; done

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

# The compliance checks once now, so the checklists have answers when the window opens (the
# console then runs them every hour).
"$bin/gatehouse" checks run >/dev/null 2>&1 || true

python3 "$root/demo/traffic.py" --demo-dir "$demo" &
pids+=($!)
echo "Traffic: normal use, a brute-force burst every 45 s, slow key spraying against Jelmore."

if [[ $GATEHOUSE_DEMO_INNER == desktop ]]; then
  "$bin/gatehouse-console"
  exit 0
fi

"$bin/gatehouse-console" &
pids+=($!)
sleep 8
xdotool search --sync --name Gatehouse windowactivate 2>/dev/null || true
xdotool key ctrl+2 2>/dev/null || true
sleep 4
mkdir -p "$root/artifacts"
import -window root "$root/artifacts/demo.png" && echo "Screenshot: $root/artifacts/demo.png"
xdotool key ctrl+3 2>/dev/null || true
sleep 3
import -window root "$root/artifacts/demo-heatmaps.png" && echo "Screenshot: $root/artifacts/demo-heatmaps.png"
xdotool key ctrl+4 2>/dev/null || true
sleep 4
import -window root "$root/artifacts/demo-rotation.png" && echo "Screenshot: $root/artifacts/demo-rotation.png"
xdotool key ctrl+5 2>/dev/null || true
sleep 3
import -window root "$root/artifacts/demo-compliance.png" && echo "Screenshot: $root/artifacts/demo-compliance.png"
[[ ${1:-} == --screenshot-and-exit ]] && exit 0
wait "${pids[-1]}"
