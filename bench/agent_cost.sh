#!/usr/bin/env bash
# The agent's cost beside the service while 2,000 lines a second arrive, side by side with
# fail2ban-server and CrowdSec on the same log, in one run inside a network namespace made for
# it: CPU (% of one core) and peak RSS of each. See bench/protect.rs. Needs root; installs
# fail2ban and CrowdSec if missing (CrowdSec without its central API: this machine is offline).
#
#     bench/agent_cost.sh [--seconds 30]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $(id -u) -eq 0 ]] || { echo "agent_cost: run as root (network namespaces, nftables)" >&2; exit 1; }
if ! command -v fail2ban-server >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fail2ban python3-pyinotify >/dev/null
fi
if ! command -v crowdsec >/dev/null; then
  # A non-empty credentials file tells the package not to register with the central API.
  mkdir -p /etc/crowdsec
  [[ -s /etc/crowdsec/online_api_credentials.yaml ]] || echo "# no central API" >/etc/crowdsec/online_api_credentials.yaml
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends crowdsec >/dev/null || true
fi
cargo build --release --locked --quiet -p gatehouse-agent --bin gatehouse-agent --example protect
ns=gh-cost-$$
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" target/release/examples/protect cost "$@"
