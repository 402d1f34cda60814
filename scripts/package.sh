#!/usr/bin/env bash
# Build Gatehouse's Debian packages into target/packages/:
#   gatehouse-agent_<version>_<arch>.deb   the agent: binary, systemd unit, sysusers entry,
#                                          example config (dpkg-deb, offline)
#   gatehouse-console_<version>_<arch>.deb the console: window, desktop entry, icons (Tauri's
#                                          bundler), and the `gatehouse` CLI in /usr/bin
#
#   scripts/package.sh            both
#   scripts/package.sh agent      only the agent's
#   scripts/package.sh console    only the console's
#
# Release builds; cargo rebuilds only what changed. Honours CARGO_TARGET_DIR.
# GATEHOUSE_PACKAGE_NO_BUILD=1 packs what is already built, without cargo or the bundler.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/packages
what=${1:-all}
mkdir -p "$out"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)

agent() {
  if [[ -z ${GATEHOUSE_PACKAGE_NO_BUILD:-} ]]; then
    say "agent: cargo build --release -p gatehouse-agent"
    cargo build --release --locked -p gatehouse-agent --quiet
  fi
  local stage=$target/deb-stage/gatehouse-agent
  rm -rf "$stage"
  install -D -m 0755 "$target/release/gatehouse-agent" "$stage/usr/bin/gatehouse-agent"
  install -D -m 0644 packaging/gatehouse-agent.service "$stage/lib/systemd/system/gatehouse-agent.service"
  install -D -m 0644 packaging/sysusers-gatehouse-agent.conf "$stage/usr/lib/sysusers.d/gatehouse-agent.conf"
  install -D -m 0644 packaging/agent.toml.example "$stage/usr/share/doc/gatehouse-agent/agent.toml.example"
  printf 'Gatehouse agent\nLicense: Apache-2.0\n' >"$stage/usr/share/doc/gatehouse-agent/copyright"
  install -d "$stage/DEBIAN"
  local size
  size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    packaging/deb/agent/control.in >"$stage/DEBIAN/control"
  install -m 0755 packaging/deb/agent/postinst packaging/deb/agent/prerm packaging/deb/agent/postrm "$stage/DEBIAN/"
  local deb=$out/gatehouse-agent_${version}_$arch.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  say "agent: $deb"
}

console() {
  say "console: the UI (npm) and the gatehouse CLI (cargo, release)"
  if [[ ! -d ui/node_modules ]]; then
    (cd ui && npm install --no-audit --no-fund --loglevel=error)
  fi
  if [[ -z ${GATEHOUSE_PACKAGE_NO_BUILD:-} ]]; then
    (cd ui && npm run --silent build)
    cargo build --release --locked -p gatehouse-cli --quiet
    say "console: npx tauri build --bundles deb"
    # beforeBuildCommand builds the UI again; it is quick once built. The Tauri CLI is the
    # UI's dev dependency; it must run where tauri.conf.json is.
    ui/node_modules/.bin/tauri build --bundles deb --ci >&2
  fi
  local built
  built=$(ls -t "$target"/release/bundle/deb/*_"$arch".deb | head -1)
  # The CLI goes into the same package: one install gives the window and `gatehouse`.
  local stage=$target/deb-stage/gatehouse-console
  rm -rf "$stage"
  dpkg-deb -R "$built" "$stage"
  install -D -m 0755 "$target/release/gatehouse" "$stage/usr/bin/gatehouse"
  local size
  size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  # Named after its binary; the bundler lists WebKitGTK and GTK twice (its own and the config's).
  awk -v size="$size" '
    /^Package:/ { print "Package: gatehouse-console"; next }
    /^Installed-Size:/ { print "Installed-Size: " size; next }
    /^Depends:/ {
      n = split(substr($0, 10), deps, /, */); out = ""; delete seen
      for (i = 1; i <= n; i++) if (!(deps[i] in seen)) { seen[deps[i]] = 1; out = out (out == "" ? "" : ", ") deps[i] }
      print "Depends: " out; next
    }
    { print }' "$stage/DEBIAN/control" >"$stage/DEBIAN/control.new"
  mv "$stage/DEBIAN/control.new" "$stage/DEBIAN/control"
  (cd "$stage" && find usr -type f -exec md5sum {} + >DEBIAN/md5sums)
  local deb=$out/gatehouse-console_${version}_$arch.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  say "console: $deb"
}

case $what in
  agent) agent ;;
  console) console ;;
  all) agent; console ;;
  *) echo "usage: scripts/package.sh [agent|console|all]" >&2; exit 2 ;;
esac
