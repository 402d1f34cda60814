#!/usr/bin/env bash
# The Rust tests and the UI unit tests again, with the clock moved by libfaketime: about 400
# days ahead, and on the night daylight saving time begins in Europe/Berlin (the clock jumps
# from 02:00 to 03:00 a couple of minutes into the run). Monotonic time stays real, so
# timeouts behave. A test that takes an expected value from the wall clock fails here.
# Run after scripts/test.sh (it reuses that build); CI runs both.
#
#     scripts/test-dates.sh            # both clocks
#     scripts/test-dates.sh '+400 days'  # one (any faketime(1) time spec)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

clocks=("$@")
((${#clocks[@]})) || clocks=('+400 days' 'Europe/Berlin 2027-03-28 01:58:00')

# rustc hangs under libfaketime, so the test binaries are built (and archived) with the real
# clock and run from the archive with the fake one.
step "build the test binaries"
archive=$sandbox/tests.tar.zst
cargo nextest archive --workspace --locked --archive-file "$archive"

export FAKETIME_DONT_FAKE_MONOTONIC=1
# The fault suite (tests/cli/faults.rs) kills 20 agents and 20 consoles in scripts/test.sh; a
# few of each are enough to see that a moved clock changes nothing there.
export GATEHOUSE_FAULT_TRIALS=4
for clock in "${clocks[@]}"; do
  zone=
  if [[ $clock == */*\ * ]]; then
    zone=${clock%% *}
    clock=${clock#* }
  fi
  left_before=$(leftovers)
  step "Rust tests with the clock at ${clock}${zone:+ in $zone}"
  TZ=${zone:-${TZ:-UTC}} faketime "$clock" bash -c "$(declare -f in_session); in_session cargo-nextest nextest run --archive-file '$archive' --workspace-remap . --no-fail-fast"
  no_new_leftovers "$left_before" "the Rust tests at $clock"
  step "UI unit tests with the clock at ${clock}${zone:+ in $zone}"
  (cd ui && TZ=${zone:-${TZ:-UTC}} faketime "$clock" npx vitest run)
done
