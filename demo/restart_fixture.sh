#!/bin/sh
# Restart a fixture service as `systemctl restart` would the real one: stop the running
# process (by its pid file) and start it again in the background, with the same arguments.
#
#     restart_fixture.sh PIDFILE fixture_service.py-arguments...
set -eu
pidfile=$1
shift
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
fi
here=$(cd "$(dirname "$0")" && pwd)
nohup python3 "$here/fixture_service.py" "$@" --pid-file "$pidfile" >/dev/null 2>&1 &
