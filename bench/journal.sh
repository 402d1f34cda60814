#!/usr/bin/env bash
# The agent's footprint following a unit's journal at 2,000 lines/s (RATE=), beside the same
# lines from a file: CPU % of one core (the agent plus, for the journal, its journalctl child)
# and peak RSS, over DURATION seconds (default 10) each, in the systemd test's container (a real
# journald). Needs root and the agent's .deb (scripts/package.sh agent).
#
#   bench/journal.sh            RATE=5000 DURATION=30 bench/journal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$target/packages/gatehouse-agent_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || scripts/package.sh agent
rootfs=$(tests/systemd/rootfs.sh)
# shellcheck source=tests/systemd/lib.sh
. tests/systemd/lib.sh
trap 'ct_poweroff' EXIT
ct_boot "gh-bench-$$" "$rootfs"
ct_copy "$deb" /root/gatehouse-agent.deb
ct_copy bench/journal_inside.py /root/journal_inside.py 0755
ct_sh 'dpkg -i /root/gatehouse-agent.deb >/dev/null 2>&1'
ct_run --setenv=RATE="${RATE:-2000}" --setenv=SECONDS_="${DURATION:-10}" -- \
  /usr/bin/python3 /root/journal_inside.py </dev/null
