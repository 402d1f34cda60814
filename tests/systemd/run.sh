#!/usr/bin/env bash
# The packaged agent under a real systemd: boots Debian 12 in systemd-nspawn (root filesystem
# made once by rootfs.sh and kept outside the repository), installs the agent's and the
# console's .deb files, runs a fixture Sekha as a hardened unit under its own user with a 0600
# config and its log in the journal, runs `gatehouse-agent setup`, enrolls the agent from the
# console CLI inside the container, and drives every action through the CLI under the
# packaged unit (tests/systemd/inside.sh). Then the same actions without the grants, each
# refused naming what is missing; an upgrade; and a purge that leaves no stray file.
#
#   tests/systemd/run.sh          (root; builds the packages first if they are missing)
#
# Bounded: the whole run is killed after GATEHOUSE_SYSTEMD_TIMEOUT seconds (default 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
[[ $(id -u) -eq 0 ]] || { echo "tests/systemd/run.sh boots a container: run it as root" >&2; exit 1; }

started=$(date +%s.%N)
rootfs=$(tests/systemd/rootfs.sh)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
agent_deb=$target/packages/gatehouse-agent_${version}_$arch.deb
console_deb=$target/packages/gatehouse-console_${version}_$arch.deb
[[ -f $agent_deb ]] || scripts/package.sh agent
[[ -f $console_deb ]] || scripts/package.sh console

# shellcheck source=tests/systemd/lib.sh
. tests/systemd/lib.sh
scratch=$(mktemp -d /tmp/gh-systemd.XXXXXX)
export CT_LOG=$scratch/container.log
cleanup() {
  local status=$?
  ct_poweroff || true
  if [[ $status -ne 0 ]]; then
    echo "--- container console (last 30 lines) ---" >&2
    tail -n 30 "$CT_LOG" >&2 || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

ct_boot "gh-sys-$$" "$rootfs"
booted=$(date +%s.%N)
ct_copy "$agent_deb" /root/pkg/gatehouse-agent.deb
ct_copy "$console_deb" /root/pkg/gatehouse-console.deb
ct_copy demo/fixture_service.py /opt/sekha-app/fixture_service.py 0755
ct_copy tests/systemd/fixture_journal.py /opt/sekha-app/fixture_journal.py 0755
ct_copy tests/systemd/inside.sh /root/inside.sh 0755

timeout "${GATEHOUSE_SYSTEMD_TIMEOUT:-300}" \
  nsenter -t "$CT_LEADER" -a -- systemd-run --quiet --wait --pipe --collect \
  -p TimeoutStartSec=infinity --setenv=TERM=dumb -- /root/inside.sh </dev/null

finished=$(date +%s.%N)
printf 'systemd test: boot %.1f s, whole run %.1f s (root filesystem %s)\n' \
  "$(awk "BEGIN{print $booted - $started}")" "$(awk "BEGIN{print $finished - $started}")" "$rootfs"
