#!/bin/sh
# STAND-IN (tests/standin of dgx_spark.cluster): test stand-in, NOT Kubernetes.
# Installs the Kubernetes stand-ins into a lab node (Debian 12 systemd container). Run as root inside the node, from a
# copy of tests/standin/. Idempotent: re-running changes nothing when nothing changed. Never part of the built
# collection. Needs python3, openssl and systemd; containerd is checked by the stand-ins at run time.
#
#   sh install.sh [--node-ip IP] [--api-server HOST:PORT] [--grace SECONDS] [--config-json JSON] [--no-enable]
#   sh install.sh --uninstall
#   (tests only: DESTDIR=<dir> installs under <dir>; SYSTEMCTL=<cmd> replaces systemctl)
#
# Installs: /usr/local/bin/{kubeadm,crictl,standin-kubelet,kubelet,standin-apiserver},
#           /usr/local/lib/standin/{standin_common.py,README.md},
#           /etc/systemd/system/{kubelet.service,kubelet.service.d/10-kubeadm.conf,standin-apiserver.service},
#           /etc/standin/config (JSON; keys: tests/standin/standin_common.py DEFAULT_CONFIG)
set -eu

SRC=$(cd "$(dirname "$0")" && pwd)
D=${DESTDIR:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
BIN=$D/usr/local/bin
LIB=$D/usr/local/lib/standin
UNITDIR=$D/etc/systemd/system
CONF=$D/etc/standin/config
NODE_IP=""
API_SERVER=""
GRACE=""
EXTRA_JSON=""
ENABLE=1
CHANGED=0

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --node-ip) NODE_IP=$2; shift 2 ;;
        --api-server) API_SERVER=$2; shift 2 ;;
        --grace) GRACE=$2; shift 2 ;;
        --config-json) EXTRA_JSON=$2; shift 2 ;;
        --no-enable) ENABLE=0; shift ;;
        --uninstall)
            $SYSTEMCTL disable --now kubelet.service >/dev/null 2>&1 || true
            $SYSTEMCTL stop standin-apiserver.service >/dev/null 2>&1 || true
            rm -f "$BIN/kubeadm" "$BIN/crictl" "$BIN/standin-kubelet" "$BIN/kubelet" "$BIN/standin-apiserver"
            rm -rf "$LIB" "$UNITDIR/kubelet.service.d/10-kubeadm.conf" "$UNITDIR/kubelet.service" \
                   "$UNITDIR/standin-apiserver.service"
            rmdir "$UNITDIR/kubelet.service.d" 2>/dev/null || true
            $SYSTEMCTL daemon-reload
            echo "stand-in removed (config $CONF kept)"
            exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

[ -n "$D" ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root inside the lab node" >&2; exit 1; }
for tool in python3 openssl "$SYSTEMCTL"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install.sh: $tool is required" >&2; exit 1; }
done

# put SRC/$1 at $2 with mode $3, only when the content or mode differs
put() {
    if [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c %a "$2")" = "$3" ]; then
        return 0
    fi
    install -D -m "$3" "$1" "$2"
    CHANGED=1
    echo "installed $2"
}

# the sources say "#!/usr/bin/env python" (what ansible-test sanity allows); Debian 12 only has python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
put_py() {
    sed '1s|^#!/usr/bin/env python$|#!/usr/bin/python3|' "$1" > "$TMP/$(basename "$2")"
    put "$TMP/$(basename "$2")" "$2" 755
}

put "$SRC/standin_common.py" "$LIB/standin_common.py" 644
put "$SRC/README.md" "$LIB/README.md" 644
put_py "$SRC/apiserver.py" "$BIN/standin-apiserver"
put_py "$SRC/kubelet" "$BIN/standin-kubelet"
put_py "$SRC/kubeadm" "$BIN/kubeadm"
put_py "$SRC/crictl" "$BIN/crictl"
if [ "$(readlink "$BIN/kubelet" 2>/dev/null || true)" != "standin-kubelet" ]; then
    ln -sfn standin-kubelet "$BIN/kubelet"
    CHANGED=1
    echo "linked $BIN/kubelet -> standin-kubelet"
fi
put "$SRC/units/kubelet.service" "$UNITDIR/kubelet.service" 644
put "$SRC/units/10-kubeadm.conf" "$UNITDIR/kubelet.service.d/10-kubeadm.conf" 644
put "$SRC/units/standin-apiserver.service" "$UNITDIR/standin-apiserver.service" 644

# /etc/standin/config: merge the given values into what is there (JSON, written only when it changes)
mkdir -p "$D/etc/standin"
NEW=$(NODE_IP="$NODE_IP" API_SERVER="$API_SERVER" GRACE="$GRACE" EXTRA_JSON="$EXTRA_JSON" CONF="$CONF" python3 - <<'PY'
import json, os
path = os.environ["CONF"]
try:
    with open(path) as fh:
        cfg = json.load(fh)
except (FileNotFoundError, ValueError):
    cfg = {}
cfg["_comment"] = "STAND-IN (tests/standin of dgx_spark.cluster): lab configuration of the test stand-ins, NOT Kubernetes"
if os.environ["NODE_IP"]:
    cfg["node_ip"] = os.environ["NODE_IP"]
if os.environ["API_SERVER"]:
    cfg["api_server"] = os.environ["API_SERVER"]
if os.environ["GRACE"]:
    cfg["node_monitor_grace_period"] = float(os.environ["GRACE"])
if os.environ["EXTRA_JSON"]:
    cfg.update(json.loads(os.environ["EXTRA_JSON"]))
print(json.dumps(cfg, indent=2, sort_keys=True))
PY
)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then
    printf '%s\n' "$NEW" > "$CONF.tmp" && mv "$CONF.tmp" "$CONF"
    CHANGED=1
    echo "wrote $CONF"
fi
mkdir -p "$D/etc/kubernetes/manifests" "$D/var/lib/kubelet"

if [ "$CHANGED" = 1 ]; then
    $SYSTEMCTL daemon-reload
fi
# like the postinst of the kubelet package: the service is enabled (and crash-loops until kubeadm configures it)
if [ "$ENABLE" = 1 ] && ! $SYSTEMCTL is-enabled --quiet kubelet.service 2>/dev/null; then
    $SYSTEMCTL enable kubelet.service >/dev/null 2>&1
    CHANGED=1
    echo "enabled kubelet.service"
fi
if [ "$CHANGED" = 1 ]; then
    echo "changed"
else
    echo "unchanged"
fi
