# Booting a real systemd in systemd-nspawn and running commands in it as units: sourced by
# tests/systemd/run.sh and bench/journal.sh. See shared platform notes: the container is
# started from a child cgroup of its own (in the name=systemd and unified hierarchies) and
# that cgroup is removed afterwards; commands run inside as transient units (systemd-run),
# not with plain nsenter, which keeps the host's capabilities.

ct_cgroup_roots=(/sys/fs/cgroup/systemd /sys/fs/cgroup/unified)

# ct_boot NAME ROOTFS: boots the container with a private network and a volatile overlay
# (each boot's writes stay in memory); sets CT_NAME, CT_NSPAWN (nspawn's pid) and CT_LEADER
# (the container's PID 1).
ct_boot() {
  CT_NAME=$1
  local rootfs=$2 root
  for root in "${ct_cgroup_roots[@]}"; do
    [[ -d $root ]] && mkdir -p "$root/$CT_NAME"
  done
  (
    for root in "${ct_cgroup_roots[@]}"; do
      [[ -d $root/$CT_NAME ]] && echo "$BASHPID" >"$root/$CT_NAME/cgroup.procs"
    done
    exec systemd-nspawn -q -D "$rootfs" -M "$CT_NAME" --register=no --keep-unit \
      --private-network --volatile=overlay --console=read-only -b </dev/null
  ) >"${CT_LOG:-/dev/null}" 2>&1 &
  CT_NSPAWN=$!
  CT_LEADER=
  local i
  for i in $(seq 1 200); do
    CT_LEADER=$(pgrep -P "$CT_NSPAWN" -x systemd || true)
    [[ -n $CT_LEADER ]] && break
    kill -0 "$CT_NSPAWN" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $CT_LEADER ]] || { echo "the container did not start (see ${CT_LOG:-its log})" >&2; return 1; }
  # Running, or at least done starting (degraded is said by the test's own checks).
  for i in $(seq 1 300); do
    local state
    state=$(nsenter -t "$CT_LEADER" -a -- systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && return 0
    sleep 0.05
  done
  echo "the container's systemd did not finish starting: $(nsenter -t "$CT_LEADER" -a -- systemctl is-system-running 2>&1)" >&2
  return 1
}

# ct_run [systemd-run options...] -- COMMAND...: run COMMAND inside as a transient unit,
# waiting for it, with its output on ours. Standard input is passed through.
ct_run() {
  nsenter -t "$CT_LEADER" -a -- systemd-run --quiet --wait --pipe --collect \
    -p TimeoutStartSec=120 "$@"
}

# ct_sh SCRIPT: a shell script inside, as root, as a unit.
ct_sh() {
  ct_run -- /bin/bash -euo pipefail -c "$1" </dev/null
}

# ct_copy HOST_PATH CONTAINER_PATH [MODE]
ct_copy() {
  install -D -m "${3:-0644}" "$1" "/proc/$CT_LEADER/root$2"
}

ct_poweroff() {
  [[ -n ${CT_NSPAWN:-} ]] || return 0
  if [[ -n ${CT_LEADER:-} ]] && kill -0 "$CT_LEADER" 2>/dev/null; then
    kill -s RTMIN+4 "$CT_LEADER" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do
      kill -0 "$CT_NSPAWN" 2>/dev/null || break
      sleep 0.05
    done
    # A shutdown that hangs: its PID 1 goes (killing only nspawn would orphan it).
    kill -0 "$CT_NSPAWN" 2>/dev/null && kill -9 "$CT_LEADER" 2>/dev/null
  fi
  wait "$CT_NSPAWN" 2>/dev/null || true
  local root dir
  for root in "${ct_cgroup_roots[@]}"; do
    [[ -d $root/$CT_NAME ]] || continue
    # Deepest first: nspawn leaves payload/ and supervisor/ below.
    find "$root/$CT_NAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  CT_NSPAWN=
}
