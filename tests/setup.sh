#!/usr/bin/env bash
# Installs everything the lab and the tests need on a fresh Debian 12 machine, and nothing twice:
# apt packages, the pinned Python venv (.venv), and the offline bootstrap that ansible-test needs.
# Safe to run again; each step is skipped when already done.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

# netavark (with aardvark-dns and iptables, which it runs) is named because the lab needs podman's netavark
# network backend: without it podman 4.3 falls back to CNI, whose --internal bridges carry no host address.
APT_PACKAGES=(podman runc crun fuse-overlayfs slirp4netns uidmap debootstrap netavark aardvark-dns iptables
              iproute2 openssh-client openssl git rsync openmpi-bin iputils-ping shellcheck
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

# ansible-test downloads a pip bootstrap script from a host this machine cannot reach. It looks in its
# cache first: put there a few lines that install pip from a wheel fetched through the package index.
cache=$HOME/.ansible/test/cache
bootstrap=$cache/get_pip_24_2.py
if [ ! -f "$bootstrap" ]; then
    mkdir -p "$cache"
    "$REPO/.venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$cache" pip==24.2
    cat > "$bootstrap" <<'PY'
# Offline stand-in for ansible-test's pip bootstrap: installs pip from the cached wheel beside it.
import glob
import os
import sys

wheel = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-24.2-*.whl"))[0]
sys.path.insert(0, wheel)
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--disable-pip-version-check", wheel] + args))
PY
fi
log "ready"
