#!/usr/bin/env bash
# Install whatever this Debian/Ubuntu machine lacks to build, run and test Gatehouse.
# Idempotent: a second run changes nothing and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  # build: Tauri's WebKitGTK stack; libdbus comes with it (the keychain's Secret Service backend)
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev build-essential pkg-config libssl-dev libxdo-dev file
  # run and test: a display, the WebDriver for WebKitGTK, a real keychain, a notification daemon
  xvfb xauth imagemagick webkit2gtk-driver gnome-keyring dbus-x11 dbus libsecret-tools dunst
  fonts-dejavu-core xdotool
  # the GUI test copies an enrollment code as an operator would (the app reads the clipboard)
  xclip
  # the demo fleet: nginx in front of the fixture services; the Radicale fixture checks its
  # users' bcrypt hashes with htpasswd -v, as Radicale's bcrypt module does
  nginx apache2-utils
  # compliance and incident tests: nftables in network namespaces, gpg-encrypted backups
  nftables iproute2 gnupg
  # the suite run again with the clock moved (scripts/test-dates.sh)
  faketime
)
command -v python3 >/dev/null || APT_PACKAGES+=(python3)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "apt: installing ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "these packages are missing and installing them needs root: ${missing[*]}
  Run this script as root once, or install them with your package manager."
    SUDO=(sudo)
  fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs), then rerun."
command -v node >/dev/null || die "Node.js 20.19 or newer is missing: install it, then rerun."
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js $(node --version) is too old: Gatehouse's UI tools need 20.19 or newer."

if ! command -v cargo-nextest >/dev/null; then
  say "cargo: installing cargo-nextest"
  cargo install cargo-nextest --locked --quiet
fi
if ! command -v tauri-driver >/dev/null; then
  say "cargo: installing tauri-driver"
  cargo install tauri-driver --version '^2.0' --locked --quiet
fi

# Install the UI's packages when package.json or the lock file changed since the last install.
# `npm install` rather than `npm ci`: with omit-lockfile-registry-resolved (set on some
# machines) npm writes lock files that its own `ci` then rejects; `install` follows the lock.
stamp=ui/node_modules/.gatehouse-stamp
want=$(cat ui/package.json ui/package-lock.json | sha256sum)
if [[ ! -f $stamp ]] || [[ $(cat "$stamp") != "$want" ]]; then
  say "npm: installing the UI's packages"
  (cd ui && npm install --no-audit --no-fund --loglevel=error)
  want=$(cat ui/package.json ui/package-lock.json | sha256sum)
  echo "$want" >"$stamp"
fi
