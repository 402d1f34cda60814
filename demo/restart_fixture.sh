#!/bin/sh
# Restart a fixture service as `systemctl restart` would the real one: stop the running
# process (by its pid file) and start it again in the background, with the same arguments.
# A start that fails at once (before the fixture writes its pid file) is reported as a
# supervisor would: the service's own words (its stderr) on this script's stderr, and status 1.
#
#     restart_fixture.sh PIDFILE fixture_service.py-arguments...
set -eu
pidfile=$1
shift
# Alive, and not a zombie nobody has reaped yet (a container's init may never reap one).
running() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }
after_stop=""
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if running "$pid"; then
    kill "$pid" 2>/dev/null || true
    # Sekha's fixture fails on a start right after a stop, as the real one does on restarts.
    after_stop="--after-stop"
  fi
  for _ in $(seq 100); do
    running "$pid" || break
    sleep 0.05
  done
  rm -f "$pidfile"
fi
here=$(cd "$(dirname "$0")" && pwd)
stderr="$pidfile.stderr"
nohup python3 "$here/fixture_service.py" "$@" $after_stop --pid-file "$pidfile" >/dev/null 2>"$stderr" &
child=$!
i=0
while [ ! -s "$pidfile" ] && running "$child" && [ "$i" -lt 200 ]; do
  sleep 0.05
  i=$((i + 1))
done
if [ ! -s "$pidfile" ] && ! running "$child"; then
  status=0
  wait "$child" || status=$?
  cat "$stderr" >&2
  echo "the service exited with status $status as it started" >&2
  exit 1
fi
