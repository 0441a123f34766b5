#!/usr/bin/env bash
# LAB ONLY. Packs the Kubernetes stand-ins (tests/standin) as Debian packages named like the real ones
# (kubelet, kubeadm, kubectl, cri-tools, version 1.31.4-1.1) into a local apt repository, so that the
# node_prep role installs, pins and holds them in the lab exactly as it does from the Kubernetes
# package repository on a real node. They are stand-ins, not Kubernetes: see tests/standin/README.md.
#   lab/build-standin-debs.sh OUTDIR
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: build-standin-debs.sh OUTDIR}
VERSION=1.31.4-1.1
STANDIN=$REPO/tests/standin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

# Rebuild only when the stand-in sources or this script changed.
sum=$( (cat "$0"; find "$STANDIN" "$REPO/lab/standin-extra" -type f -not -name '*.pyc' | sort | xargs cat) | sha256sum | cut -c1-16)
[ -f "$OUT/.sum" ] && [ "$(cat "$OUT/.sum")" = "$sum" ] && exit 0
rm -f "$OUT"/*.deb

package() {  # name depends description
    local name=$1 depends=$2 description=$3 dir=$work/$1
    mkdir -p "$dir/DEBIAN" "$dir/usr/share/doc/$name"
    printf 'STAND-IN for %s (dgx_spark.cluster lab): not Kubernetes. See tests/standin/README.md.\n' "$name" \
        > "$dir/usr/share/doc/$name/README.standin"
    {
        echo "Package: $name"
        echo "Version: $VERSION"
        echo "Architecture: all"
        echo "Maintainer: dgx_spark.cluster lab <lab@invalid>"
        [ -n "$depends" ] && echo "Depends: $depends"
        echo "Description: LAB STAND-IN $description"
        echo " Test stand-in built from tests/standin of dgx_spark.cluster. Not Kubernetes."
    } > "$dir/DEBIAN/control"
}

package kubelet "python3, openssl" "kubelet (systemd service that reports Node status to the API stand-in)"
mkdir -p "$work/kubelet/usr/lib/dgx-standin"
cp -r "$STANDIN"/. "$work/kubelet/usr/lib/dgx-standin/"
find "$work/kubelet/usr/lib/dgx-standin" -name '__pycache__' -prune -exec rm -rf {} +
[ -f "$work/kubelet/usr/lib/dgx-standin/README.md" ] \
    || echo "STAND-IN (tests/standin of dgx_spark.cluster): test stand-ins, NOT Kubernetes." > "$work/kubelet/usr/lib/dgx-standin/README.md"
# The calico-node DaemonSet stand-in rides along (lab/standin-extra): without a CNI, no Node becomes Ready.
install -m 0755 "$REPO/lab/standin-extra/calico-node-standin" "$work/kubelet/usr/lib/dgx-standin/calico-node-standin"
mkdir -p "$work/kubelet/lib/systemd/system"
install -m 0644 "$REPO/lab/standin-extra/calico-node-standin.service" "$work/kubelet/lib/systemd/system/"
cat > "$work/kubelet/DEBIAN/postinst" <<'SH'
#!/bin/sh
# Like the real kubelet package: install the binary and enable the (crash-looping until configured) service.
set -e
sh /usr/lib/dgx-standin/install.sh >/dev/null
systemctl daemon-reload
systemctl enable --now calico-node-standin.service >/dev/null 2>&1
SH
cat > "$work/kubelet/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
[ "$1" = remove ] && sh /usr/lib/dgx-standin/install.sh --uninstall >/dev/null || true
SH
chmod 0755 "$work/kubelet/DEBIAN/postinst" "$work/kubelet/DEBIAN/prerm"

package cri-tools "kubelet (= $VERSION)" "crictl (installed with the kubelet stand-in)"
package kubeadm "kubelet (= $VERSION), cri-tools" "kubeadm (installed with the kubelet stand-in)"
package kubectl "" "kubectl (not implemented in the lab; the collection uses the API through kubernetes.core)"
mkdir -p "$work/kubectl/usr/bin"
cat > "$work/kubectl/usr/bin/kubectl" <<'SH'
#!/bin/sh
# LAB STAND-IN: only `kubectl version --client`. The collection itself never runs kubectl.
case "$*" in
    "version --client"*) echo "Client Version: v1.31.4 (dgx_spark.cluster lab stand-in)"; exit 0 ;;
esac
echo "kubectl: not implemented by the dgx_spark.cluster lab stand-in" >&2
exit 1
SH
chmod 0755 "$work/kubectl/usr/bin/kubectl"

for name in kubelet cri-tools kubeadm kubectl; do
    dpkg-deb --root-owner-group -Zgzip --build "$work/$name" "$OUT/${name}_${VERSION}_all.deb" >/dev/null
done

# A flat repository: deb [trusted=yes] file:/srv/standin-apt ./
: > "$OUT/Packages"
for deb in "$OUT"/*.deb; do
    {
        dpkg-deb -f "$deb"
        echo "Filename: ./$(basename "$deb")"
        echo "Size: $(stat -c %s "$deb")"
        echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
        echo
    } >> "$OUT/Packages"
done
gzip -9nc "$OUT/Packages" > "$OUT/Packages.gz"
echo "$sum" > "$OUT/.sum"
echo "built stand-in packages $VERSION in $OUT"
