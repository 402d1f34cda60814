#!/usr/bin/env bash
# The whole test suite: formatting, lints, UI checks and tests, Rust tests against a real
# keychain, and the GUI test (the built app under Xvfb, driven by tauri-driver).
# Installs what is missing first. Screenshots land in artifacts/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

scripts/setup.sh

step "format"
cargo fmt --all --check

step "UI: type check, lint, unit tests, build"
(cd ui && npm run --silent check && npm run --silent lint && npm test --silent && npm run --silent build)

step "fixture services behave as service-facts.md says"
python3 -m unittest demo/test_fixture_service.py

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

step "build"
cargo build --workspace --all-targets --locked --quiet

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

step "Rust tests (real Secret Service)"
in_session cargo nextest run --workspace --locked --no-fail-fast

step "doc tests (Sensitive<T> must not compile into Serialize or Display)"
cargo test --workspace --doc --locked --quiet

step "GUI test (Xvfb + tauri-driver + WebKitWebDriver)"
rm -rf "$root/artifacts/screenshots"
GATEHOUSE_APP="$root/target/debug/gatehouse-console" \
GATEHOUSE_ARTIFACTS="$root/artifacts" \
  in_session xvfb-run -a -s "-screen 0 1280x800x24" node --test --test-concurrency=1 --test-reporter=spec tests/gui/
echo "Screenshots: $root/artifacts/screenshots/"
