#!/usr/bin/env bash
# Installs everything the lab and the tests need on a fresh Debian 12 machine, and nothing twice:
# apt packages and the pinned Python venv (.venv). Nothing is written to $HOME (tests/sanity.sh gives
# ansible-test a home of its own).
# Safe to run again; each step is skipped when already done.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

# netavark (with aardvark-dns and iptables, which it runs) is named because the lab needs podman's netavark
# network backend: without it podman 4.3 falls back to CNI, whose --internal bridges carry no host address.
APT_PACKAGES=(podman runc crun fuse-overlayfs slirp4netns uidmap debootstrap netavark aardvark-dns iptables
              python3-venv iproute2 openssh-client openssl git rsync openmpi-bin iputils-ping shellcheck
              qemu-system-x86 qemu-utils e2fsprogs)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    [ "$(id -u)" = 0 ] || { log "need root for apt-get (or install: ${missing[*]})"; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=$REPO/.venv/.requirements.sha256
want=$(sha256sum "$REPO/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$REPO/.venv/bin/ansible-playbook" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "creating the Python venv .venv from requirements.txt (about a minute)"
    python3 -m venv "$REPO/.venv"
    "$REPO/.venv/bin/pip" install -q --disable-pip-version-check -r "$REPO/requirements.txt"
    echo "$want" > "$stamp"
fi

log "ready"
