#!/usr/bin/env bash
# The whole test suite: formatting, lints, UI checks and tests, Rust tests against a real
# keychain, and the GUI test (the built app under Xvfb, driven by tauri-driver).
# Installs what is missing first. Screenshots land in artifacts/screenshots/.
# scripts/test-dates.sh then runs the Rust and UI tests again with the clock moved.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

checkout_before=$(git status --porcelain 2>/dev/null || true)
left_before=$(leftovers)

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

step "Rust tests (real Secret Service)"
in_session cargo nextest run --workspace --locked --no-fail-fast
no_new_leftovers "$left_before" "the Rust tests"

step "doc tests (Sensitive<T> must not compile into Serialize or Display)"
cargo test --workspace --doc --locked --quiet

step "GUI test (Xvfb + tauri-driver + WebKitWebDriver)"
rm -rf "$root/artifacts/screenshots"
GATEHOUSE_APP="$root/target/debug/gatehouse-console" \
GATEHOUSE_ARTIFACTS="$root/artifacts" \
  in_session xvfb-run -a -s "-screen 0 1280x800x24" node --test --test-concurrency=1 --test-reporter=spec tests/gui/
echo "Screenshots: $root/artifacts/screenshots/"
no_new_leftovers "$left_before" "the GUI tests"

step "the run left the checkout as it found it"
checkout_after=$(git status --porcelain 2>/dev/null || true)
if [[ $checkout_after != "$checkout_before" ]]; then
  printf 'The test run changed the checkout (git status before and after differ):\n%s\n' \
    "$(diff <(echo "$checkout_before") <(echo "$checkout_after") || true)" >&2
  exit 1
fi
echo "git status is as it was."
