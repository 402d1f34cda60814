# Shared by test.sh and test-dates.sh: sourced, not run.

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# A private session bus with gnome-keyring unlocked, and XDG dirs in a temp folder, so tests
# use a real Secret Service and never touch this user's keyring, data or caches.
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox" 2>/dev/null || true' EXIT
mkdir -p "$sandbox"/{data,config,cache,runtime}
chmod 700 "$sandbox/runtime"
export XDG_DATA_HOME=$sandbox/data XDG_CONFIG_HOME=$sandbox/config \
  XDG_CACHE_HOME=$sandbox/cache XDG_RUNTIME_DIR=$sandbox/runtime
export GATEHOUSE_DATA_DIR=$sandbox/gatehouse GATEHOUSE_KEYCHAIN_SERVICE="Gatehouse test"
in_session() {
  dbus-run-session -- bash -c '
    echo -n gatehouse-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec "$@"' session "$@"
}

# What a test starts (fixture services, agents, the app, drivers, namespaces, scratch
# folders) must be gone when it ends. `leftovers` lists what is there now; compare before
# and after a step with `no_new_leftovers`.
leftovers() {
  local root=$PWD
  pgrep -af -- "$root/demo/fixture_service.py|$root/target/[a-z]+/gatehouse|tauri-driver|WebKitWebDriver" \
    | grep -v -e pgrep -e 'scripts/' | sed 's/^/process /' || true
  ls -d /tmp/gh-gui-* 2>/dev/null | sed 's/^/folder /' || true
  ip netns list 2>/dev/null | grep -E '^gh-' | sed 's/^/netns /' || true
}
no_new_leftovers() { # before-listing what
  local before=$1 what=$2 now new
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    now=$(leftovers)
    new=$(comm -13 <(sort <<<"$before") <(sort <<<"$now") | sed '/^$/d')
    [[ -z $new ]] && return 0
    sleep 0.5
  done
  printf '%s left these behind (a test must stop what it starts and remove its folders):\n%s\n' "$what" "$new" >&2
  return 1
}
