#!/usr/bin/env bash
# Time to ban, Gatehouse's agent against fail2ban, side by side in one run on one log, inside a
# network namespace made for the run (so neither touches this machine's firewall): see
# bench/protect.rs. Needs root (the namespace and nftables); installs fail2ban if missing.
#
#     bench/time_to_ban.sh [--trials 30] [--backend auto|polling|pyinotify]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $(id -u) -eq 0 ]] || { echo "time_to_ban: run as root (network namespaces, nftables)" >&2; exit 1; }
if ! command -v fail2ban-server >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fail2ban python3-pyinotify >/dev/null
fi
cargo build --release --locked --quiet -p gatehouse-agent --bin gatehouse-agent --example protect
ns=gh-ban-$$
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" target/release/examples/protect ban "$@"
