#!/usr/bin/env bash
# A Debian 12 root filesystem for booting a real systemd in systemd-nspawn: made once with
# debootstrap and kept OUTSIDE the repository (/var/cache/gatehouse-test/, or
# $GATEHOUSE_TEST_CACHE), named by a hash of what it holds so a changed package list makes a
# new one. Prints the directory. A zstd tarball beside it restores it in seconds if the
# directory was removed.
#
# What it holds: systemd, D-Bus and polkit (the agent's restart grant is a polkit rule);
# nftables, python3 and sqlite3 (the fixture service and its database); acl (setup's grant on
# the service's directory); gnome-keyring and libsecret (the console CLI keeps its secrets in
# a real keychain); curl (checks keys from outside the agent); and the console's own runtime
# libraries (WebKitGTK, GTK), so its .deb installs with no network.
set -euo pipefail

cache=${GATEHOUSE_TEST_CACHE:-/var/cache/gatehouse-test}
packages=systemd,systemd-sysv,dbus,dbus-user-session,polkitd,nftables,iproute2,python3,sqlite3,acl,curl,ca-certificates,gnome-keyring,dbus-x11,libsecret-1-0,libsecret-tools,keyutils,libwebkit2gtk-4.1-0,libgtk-3-0,libayatana-appindicator3-1,librsvg2-2,procps
suite=bookworm
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

name=rootfs-$suite-$(printf '%s %s' "$suite" "$packages" | sha256sum | cut -c1-12)
dir=$cache/$name
tarball=$cache/$name.tar.zst

say() { printf '%s\n' "$*" >&2; }

for tool in debootstrap systemd-nspawn zstd; do
  if ! command -v "$tool" >/dev/null; then
    say "rootfs: installing systemd-container debootstrap zstd"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd-container debootstrap zstd >&2
    break
  fi
done

if [[ -f $dir/.complete ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ -f $dir/.complete ]]; then
  echo "$dir"
  exit 0
fi
rm -rf "$dir" "$dir.partial"
if [[ -f $tarball ]]; then
  say "rootfs: unpacking $tarball"
  mkdir -p "$dir.partial"
  zstd -dc "$tarball" | tar -x -C "$dir.partial" --numeric-owner
else
  say "rootfs: debootstrap $suite into $dir (once; a few minutes)"
  debootstrap --variant=minbase --include="$packages" "$suite" "$dir.partial" "$mirror" >&2
  # Each boot gets its own machine id (the directory is shared read-only between runs).
  : >"$dir.partial/etc/machine-id"
  rm -f "$dir.partial/var/lib/dbus/machine-id"
  rm -rf "$dir.partial/var/cache/apt/archives/"*.deb "$dir.partial/var/lib/apt/lists/"*
  touch "$dir.partial/.complete"
  tar -C "$dir.partial" --numeric-owner -cf - . | zstd -q -T2 -3 -o "$tarball.partial"
  mv "$tarball.partial" "$tarball"
fi
mv "$dir.partial" "$dir"
echo "$dir"
