#!/bin/bash
# Runs inside the test container as root (a transient unit started by run.sh). Each check
# says what it shows; the first that fails ends the run with its message.
set -euo pipefail
export LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin

passed=0
step() { printf '\n== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf '  ok: %s\n' "$*"; }
fail() { printf '  FAILED: %s\n' "$*" >&2; exit 1; }
# expect "what it shows" COMMAND...: the command succeeds.
expect() { local why=$1; shift; "$@" >/tmp/out 2>&1 || { cat /tmp/out >&2; fail "$why"; }; ok "$why"; }
# contains "what it shows" NEEDLE FILE
contains() { grep -qF -- "$2" "$3" || { cat "$3" >&2; fail "$1 (no \"$2\")"; }; ok "$1"; }
lacks() { ! grep -qF -- "$2" "$3" || { cat "$3" >&2; fail "$1 (\"$2\" is there)"; }; ok "$1"; }
# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() { local until=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do ((SECONDS < until)) || return 1; sleep 0.2; done; }

# The files on the system, to compare before the install and after the purge. Left out: what
# the test itself or the service makes and what changes on any running system.
inventory() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
    -o -path /var/tmp -o -path /var/log -o -path /var/cache -o -path /var/lib/dpkg \
    -o -path /var/lib/systemd -o -path /root -o -path /opt -o -path /var/lib/polkit-1 \
    -o -path /etc/systemd/system/sekha.service \
    -o -path /etc/systemd/system/multi-user.target.wants/sekha.service \) -prune -o -print | sort
}

step "install the agent's package twice (an upgrade in place)"
inventory >/root/before.txt
expect "the agent's package installs" dpkg -i /root/pkg/gatehouse-agent.deb
expect "and installs again over itself" dpkg -i /root/pkg/gatehouse-agent.deb
expect "its account exists" getent passwd gatehouse-agent
expect "its unit is known to systemd" systemctl cat gatehouse-agent.service
[[ $(stat -c '%U %a' /var/lib/gatehouse-agent) == "gatehouse-agent 700" ]] \
  && ok "its state directory is its own, mode 0700" || fail "the state directory is the agent's own, 0700"

step "a Sekha (fixture) under its own user, 0600 config, log to the journal"
useradd --system --home-dir /opt/sekha --shell /usr/sbin/nologin --user-group sekha
install -d -o sekha -g sekha -m 0700 /opt/sekha
old_key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
printf 'mcp_api_key = "%s"\n' "$old_key" >/opt/sekha/config.toml
chown sekha:sekha /opt/sekha/config.toml && chmod 0600 /opt/sekha/config.toml

step "gatehouse-agent setup"
gatehouse-agent setup --profile sekha --unit sekha.service --service-dir /opt/sekha \
  --service-user sekha --listen 127.0.0.1:7443 --code-file /root/code.txt \
  --write-unit "/usr/bin/python3 /opt/sekha-app/fixture_journal.py --profile sekha --port 8080 --workdir /opt/sekha" \
  | tee /root/setup.txt || { systemctl status --no-pager gatehouse-agent sekha || true; fail "setup succeeds and every grant it made works"; }
ok "setup succeeds and every grant it made works"
expect "the service runs as its own unit" systemctl is-active sekha.service
[[ $(systemctl show -p User --value sekha.service) == sekha ]] && ok "as the sekha user" || fail "the service runs as sekha"
expect "the agent runs under its packaged unit" systemctl is-active gatehouse-agent.service
[[ $(ps -o user= -p "$(systemctl show -p MainPID --value gatehouse-agent)") == gatehouse-agent ]] \
  && ok "as its own user" || fail "the agent runs as gatehouse-agent"
for cap in "restart: yes" "rotate: yes" "snapshot: yes" "restore: yes" "block: yes" "read_log:journal:sekha.service: yes" "read_config:/opt/sekha/config.toml: yes"; do
  contains "setup reports the agent can: $cap" "$cap" /root/setup.txt
done
code=$(tail -n 1 /root/setup.txt)
[[ $code == "$(cat /root/code.txt)" ]] && ok "the enrollment code is alone on the last line and in the file" \
  || fail "the code is on the last line and in --code-file"
gatehouse-agent check-config >/root/check.txt
contains "check-config shows the running agent's report" "restart: yes" /root/check.txt
wait_for 10 curl -fsS http://127.0.0.1:8080/health || fail "the fixture answers"

step "the console's package and CLI"
expect "the console's package installs (no network: its libraries are in the image)" dpkg -i /root/pkg/gatehouse-console.deb
expect "the window's binary starts" gatehouse-console --version
contains "and says its version" "gatehouse-console" /tmp/out
expect "its desktop entry is installed" test -f /usr/share/applications/Gatehouse.desktop
expect "and its icon" bash -c 'ls /usr/share/icons/hicolor/*/apps/gatehouse-console.png'
mkdir -p /root/console/{data,config,cache,runtime} && chmod 700 /root/console/runtime
# The console CLI in a private D-Bus session with a real, unlocked gnome-keyring (no kernel
# keyring: nspawn does not allow one, and the Secret Service needs none).
gh() (
  export XDG_DATA_HOME=/root/console/data XDG_CONFIG_HOME=/root/console/config \
    XDG_CACHE_HOME=/root/console/cache XDG_RUNTIME_DIR=/root/console/runtime \
    GATEHOUSE_DATA_DIR=/root/console/gatehouse
  exec dbus-run-session -- bash -c '
    echo -n systemd-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec gatehouse "$@"' gh "$@"
)
expect "the console enrolls the agent with the code" gh instance add --name sekha-1 --address 127.0.0.1:7443 --code-file /root/code.txt
expect "and reaches it over mutual TLS" gh instance refresh sekha-1

step "the service's journal, followed"
journal_has() { gh events --sync --instance sekha-1 --format jsonl >/tmp/events.jsonl && grep -qF "$1" /tmp/events.jsonl; }
wait_for 20 journal_has "API authentication enabled" || { cat /tmp/events.jsonl >&2; fail "the service's startup lines reach the console from the journal"; }
ok "the service's startup lines reach the console from the journal"
python3 - <<'PY' || fail "journal events are parsed with Sekha's format"
import json
events = [json.loads(l) for l in open("/tmp/events.jsonl") if l.strip()]
# Sekha's own lines (the fixture also prints a line of its own on stderr, which Sekha does not).
service = [e for e in events if e.get("source") == "service" and "sekha_controller" in e.get("raw", "")]
assert service, "events from the service's journal"
assert all(e.get("kind") != "unparsed" for e in service), f"every line parsed: {service}"
PY
ok "journal events are parsed with Sekha's format, none unparsed"

step "rotate the key (verified from outside)"
gh --json rotate sekha-1 mcp_api_key --yes --show-key >/tmp/rotate.json 2>/tmp/rotate.err || { cat /tmp/rotate.json /tmp/rotate.err >&2; fail "the rotation runs"; }
new_key=$(python3 -c 'import json,sys; d=json.load(open("/tmp/rotate.json")); print(d.get("new_key") or d.get("key") or "")' 2>/dev/null || true)
[[ -n $new_key ]] || new_key=$(grep -o '"[A-Za-z0-9_-]\{43,\}"' /tmp/rotate.json | head -1 | tr -d '"')
[[ -n $new_key ]] || { cat /tmp/rotate.json >&2; fail "the rotation prints the new key once"; }
python3 - <<'PY' || { cat /tmp/rotate.json >&2; fail "the rotation is committed and verified"; }
import json
d = json.load(open("/tmp/rotate.json"))
outcome = d.get("outcome", d)
assert outcome.get("committed") is True, outcome
PY
ok "the rotation is committed and verified by the agent"
status() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $1" -d '{}' http://127.0.0.1:8080/mcp/tools/memory_stats; }
[[ $(status "$new_key") == 200 ]] && ok "the service accepts the new key (curl from outside the agent)" || fail "the new key works"
[[ $(status "$old_key") == 401 ]] && ok "and refuses the old one" || fail "the old key is refused"
[[ $(stat -c '%U %a' /opt/sekha/config.toml) == "sekha 600" ]] && ok "the config is still sekha's, mode 0600" || fail "the rotated config keeps its owner and mode"

step "restart, snapshot and restore, block and unblock, evidence"
incident=$(gh --json incident open --title "systemd test" --instance sekha-1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id", d.get("incident", {}).get("id", "")))')
[[ -n $incident ]] || fail "an incident opens"
pid_before=$(systemctl show -p MainPID --value sekha.service)
expect "the console restarts the service through the agent" gh incident restart "$incident" sekha-1 --yes
[[ $(systemctl show -p MainPID --value sekha.service) != "$pid_before" ]] && ok "a new process serves" || fail "the service was restarted"
conversation() { curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"label\":\"$1\"}" http://127.0.0.1:8080/api/v1/conversations >/dev/null; }
labels() { curl -fsS http://127.0.0.1:8080/api/v1/conversations; }
conversation before-snapshot
expect "a snapshot of the service's database" gh incident snapshot "$incident" sekha-1
snapshot=$(gh --json incident snapshots sekha-1 | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d.get("snapshots", d); print(s[0]["name"] if s else "")')
[[ -n $snapshot ]] || fail "the snapshot is listed"
conversation after-snapshot
labels | grep -q after-snapshot || fail "the service stores a conversation"
expect "the snapshot is restored" gh incident restore "$incident" sekha-1 "$snapshot" --yes
wait_for 10 curl -fsS http://127.0.0.1:8080/health || fail "the service answers after the restore"
labels >/tmp/labels.json
contains "the restored database holds what the snapshot held" before-snapshot /tmp/labels.json
lacks "and not what came after" after-snapshot /tmp/labels.json
[[ $(stat -c '%U' /opt/sekha/sekha.db) == sekha ]] && ok "the restored database is sekha's" || fail "the restored database keeps its owner"
expect "an address is blocked" gh incident block "$incident" sekha-1 203.0.113.9 --ttl 600 --yes
nft list table inet gatehouse >/tmp/nft.txt
contains "the block is in the host's nftables" 203.0.113.9 /tmp/nft.txt
expect "and unblocked" gh incident unblock "$incident" sekha-1 203.0.113.9
nft list table inet gatehouse >/tmp/nft.txt
lacks "the address is gone from the set" 203.0.113.9 /tmp/nft.txt
mkdir -p /root/evidence
expect "evidence is collected" gh incident evidence "$incident" --out /root/evidence
grep -rqF "API authentication enabled" /root/evidence && ok "the bundle holds the service's journal lines" \
  || { ls -R /root/evidence >&2; fail "the evidence holds the journal's lines"; }

step "without the grants, each action is refused naming what is missing"
mkdir -p /etc/systemd/system/gatehouse-agent.service.d
cat >/etc/systemd/system/gatehouse-agent.service.d/99-test-no-grants.conf <<'EOC'
[Service]
SupplementaryGroups=
AmbientCapabilities=
CapabilityBoundingSet=
EOC
mv /etc/polkit-1/rules.d/50-gatehouse-agent-sekha.service.rules /root/
setfacl -x u:gatehouse-agent /opt/sekha
systemctl daemon-reload && systemctl restart gatehouse-agent
wait_for 15 test -s /var/lib/gatehouse-agent/capabilities.json || fail "the agent restarts without its grants"
sleep 1
gatehouse-agent check-config >/root/check.txt
contains "check-config: no restart, naming polkit" "restart: no, because systemd refused" /root/check.txt
contains "check-config: no config read, naming the capability" "CAP_DAC_READ_SEARCH" /root/check.txt
contains "check-config: no journal, naming the group" "needs the systemd-journal group" /root/check.txt
contains "check-config: no block, naming the capability" "block: no" /root/check.txt
refused() { # what needle command...
  local what=$1 needle=$2; shift 2
  if "$@" >/tmp/refused.txt 2>&1; then cat /tmp/refused.txt >&2; fail "$what is refused without its grant"; fi
  contains "$what is refused, naming what is missing" "$needle" /tmp/refused.txt
}
refused "a rotation" "no key named mcp_api_key" gh rotate sekha-1 mcp_api_key --yes
gh credentials >/tmp/credentials.txt 2>&1 || true
contains "the key inventory says why: the grant to read the service's config" "CAP_DAC_READ_SEARCH" /tmp/credentials.txt
refused "a restart" "polkit" gh incident restart "$incident" sekha-1 --yes
refused "a snapshot" "CAP_DAC_READ_SEARCH" gh incident snapshot "$incident" sekha-1
refused "a restore" "CAP_DAC_READ_SEARCH" gh incident restore "$incident" sekha-1 "$snapshot" --yes
refused "a block" "CAP_NET_ADMIN" gh incident block "$incident" sekha-1 203.0.113.9 --ttl 600 --yes
sleep 2
journalctl -u gatehouse-agent -o cat --no-pager >/tmp/agent-log.txt
n=$(grep -c "cannot read the unit's journal" /tmp/agent-log.txt || true)
[[ $n -eq 1 ]] && ok "the unreadable journal is logged once, naming it (not four times a second)" \
  || { tail -n 20 /tmp/agent-log.txt >&2; fail "the unreadable journal is logged once (found $n)"; }
contains "the agent's log names the journal and the grant" "systemd-journal group" /tmp/agent-log.txt
rm /etc/systemd/system/gatehouse-agent.service.d/99-test-no-grants.conf
mv /root/50-gatehouse-agent-sekha.service.rules /etc/polkit-1/rules.d/

step "upgrade while running, then purge"
expect "the package installs over a running, enrolled agent" dpkg -i /root/pkg/gatehouse-agent.deb
wait_for 15 systemctl is-active gatehouse-agent || fail "the agent runs after the upgrade"
expect "and is still enrolled" gh instance refresh sekha-1
expect "the console's package purges" dpkg --purge gatehouse-console
expect "the agent's package purges" dpkg --purge gatehouse-agent
getent passwd gatehouse-agent >/dev/null && fail "the agent's account is removed" || ok "the agent's account is removed"
getfacl -p /opt/sekha 2>/dev/null | grep -q gatehouse-agent && fail "the ACL on the service's directory is taken back" \
  || ok "the ACL on the service's directory is taken back"
inventory >/root/after.txt
diff /root/before.txt /root/after.txt >/tmp/stray.txt && ok "install, upgrade and purge leave no stray file" \
  || { cat /tmp/stray.txt >&2; fail "install, upgrade and purge leave no stray file"; }
printf '\n%s passed, 0 failed\n' "$passed"
