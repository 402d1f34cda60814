#!/usr/bin/env bash
# Gatehouse's parse-and-detect against fail2ban and grep, in one run on the same generated
# 1,000,000-line nginx access log (about 10 % failed logins from four addresses):
#   - `gatehouse scan`: the agent's parser and the console's detection rules, every core;
#   - `fail2ban-regex` (Debian's fail2ban) with an equivalent filter (401 and 403 lines), once
#     written as the guides write filters (fail2ban finds the date itself) and once with an
#     anchored `datepattern`, which is about ten times faster;
#   - `LC_ALL=C grep -c '" 401 '` as the floor: counting bytes, understanding nothing.
# Prints the three times, the failed lines each counted, and the addresses Gatehouse alerted on.
#
#     bench/fail2ban.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v fail2ban-regex >/dev/null; then
  sudo=(); [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends fail2ban >/dev/null
fi
cargo build --release --locked --quiet -p gatehouse-cli
log=target/bench/access.log
[[ -f $log ]] || cargo run --release --locked --quiet -p gatehouse-events --example parse >/dev/null
lines=$(wc -l <"$log")
echo "log: $log ($lines lines, $(du -h "$log" | cut -f1))"

filter=$(mktemp --suffix=.conf)
tuned=$(mktemp --suffix=.conf)
trap 'rm -f "$filter" "$tuned"' EXIT
cat >"$filter" <<'EOF'
[Definition]
# nginx combined: the address first, the request, then a 401 or 403 status.
failregex = ^<HOST> \S+ \S+ \[\] "[^"]*" 40[13] 
EOF
cp "$filter" "$tuned"
echo 'datepattern = ^[^\[]*\[({DATE})' >>"$tuned"

seconds() { local s=$EPOCHREALTIME; "$@" >"$out" 2>&1; echo "$EPOCHREALTIME - $s" | bc; }
out=$(mktemp)

grep_s=$(seconds env LC_ALL=C grep -c '" 401 ' "$log")
grep_n=$(cat "$out")
# The page cache is warm for everyone: grep read the file first.
gh_s=$(seconds target/release/gatehouse --json scan --format nginx_combined --service sekha "$log")
gh_json=$(cat "$out")
gh_n=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["failures"])' "$gh_json")
gh_ips=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["alerted_addresses"]))' "$gh_json")
echo "running fail2ban-regex twice (about two and a half minutes)..."
f2b_s=$(seconds fail2ban-regex "$log" "$filter")
f2b_n=$(grep -oP 'Lines: \d+ lines, \d+ ignored, \K\d+(?= matched)' "$out" || echo "?")
f2bt_s=$(seconds fail2ban-regex "$log" "$tuned")
f2bt_n=$(grep -oP 'Lines: \d+ lines, \d+ ignored, \K\d+(?= matched)' "$out" || echo "?")
rm -f "$out"

attackers=$(LC_ALL=C grep '" 401 ' "$log" | cut -d' ' -f1 | sort -u | tr '\n' ' ')
printf '%-24s %10s %14s\n' "" "seconds" "failed lines"
printf '%-24s %10.3f %14s\n' "grep -c (floor)" "$grep_s" "$grep_n"
printf '%-24s %10.3f %14s\n' "gatehouse scan" "$gh_s" "$gh_n"
printf '%-24s %10.3f %14s\n' "fail2ban-regex" "$f2b_s" "$f2b_n"
printf '%-24s %10.3f %14s\n' "fail2ban-regex, tuned" "$f2bt_s" "$f2bt_n"
echo "attacking addresses in the log: $attackers"
echo "addresses Gatehouse alerted on: $gh_ips"
python3 - "$grep_s" "$gh_s" "$f2b_s" "$f2bt_s" <<'PY'
import sys
grep, gh, f2b, tuned = map(float, sys.argv[1:])
print(f"gatehouse is {f2b / gh:.0f}x faster than fail2ban-regex (goal: 500x), {tuned / gh:.0f}x faster "
      f"than the tuned filter, and takes {gh / grep:.2f}x grep's time (goal: within 2x)")
PY
