#!/usr/bin/env bash
# LAB ONLY. Turns the real Kubernetes binaries of lab/build-kubernetes.sh into what the lab nodes install, the way
# a real Spark gets them from the Kubernetes package repository and the image registry:
#   <out>/apt     a flat apt repository: kubeadm, kubelet, kubectl and cri-tools at their real versions, so that
#                 node_prep installs, pins and holds them exactly as on a real node
#   <out>/images  images.tar: every image `kubeadm config images list` names, under exactly that name, built
#                 FROM scratch around the binaries; the lab's test image (busybox, labelled, for test pods); and
#                 the LAB STAND-IN image for the apps (lab/app-standin: busybox answering the apps' endpoints, on
#                 the test image's layers, so it adds a few kilobytes to the archive)
#                 lab/lab.sh imports it into each node's containerd (`ctr -n k8s.io images import`): the
#                 collection never does, and nothing in the lab can pull.
#   lab/build-node-artifacts.sh      build what is out of date, then print <out> on stdout (progress on stderr)
# The collection never uses this. Rebuilt only when the binaries, the Debian busybox, lab/app-standin or this script
# changed.
set -euo pipefail
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
LAB_DIR=$(dirname "$SCRIPT")
export CONTAINERS_CONF=${LAB_CONTAINERS_CONF:-$LAB_DIR/containers.conf}
export CONTAINERS_STORAGE_CONF=${LAB_STORAGE_CONF:-$LAB_DIR/storage.conf}

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The binaries (cached; a cold build takes about 12 minutes). kube-proxy and CoreDNS are built too: kubeadm's
# preflight wants every image it lists present, even for add-on phases the lab skips.
export EXTRA_TARGETS=${EXTRA_TARGETS-kube-proxy coredns}
nice -n 19 "$LAB_DIR/build-kubernetes.sh" >&2 || die "building the Kubernetes binaries failed (output above)"
BIN=$("$LAB_DIR/build-kubernetes.sh" --bin-dir)
OUT=$(dirname "$BIN")
# shellcheck disable=SC1091  # written by build-kubernetes.sh
. "$OUT/versions.env"
ARCH=$(dpkg --print-architecture)
TEST_IMAGE=localhost/dgxlab-busybox:1
# LAB STAND-IN for the apps' images (only the lab inventory's apps_overrides names it).
STANDIN_IMAGE=localhost/dgxlab-app-standin:1
# The same LAB STAND-IN under a name no node has: a "locally built" app image that only its archive
# (images/app-local.tar) holds, for the apps role's import into a node's containerd (image_archive).
LOCAL_STANDIN_IMAGE=localhost/dgxlab-app-local:1
STANDIN_DIR=$LAB_DIR/app-standin

sum_of() { { cat "$SCRIPT"; cat "$OUT"/stamps/*; "$@"; } | sha256sum | cut -c1-16; }

build_apt() {
    local dir=$OUT/apt sum work version cri_version
    sum=$(sum_of true)
    [ -f "$dir/.sum" ] && [ "$(cat "$dir/.sum")" = "$sum" ] && return 0
    log "packaging kubeadm, kubelet, kubectl and cri-tools $KUBE_VERSION into $dir"
    version=${KUBE_VERSION#v}-1.1
    cri_version=${CRI_TOOLS_VERSION#v}-1.1
    work=$(mktemp -d)
    rm -rf "$dir"
    mkdir -p "$dir"
    control() {  # name version depends description
        mkdir -p "$work/$1/DEBIAN" "$work/$1/usr/share/doc/$1"
        printf 'Built for the dgx_spark.cluster lab by lab/build-node-artifacts.sh from the Go module proxy.\n' \
            >"$work/$1/usr/share/doc/$1/README.lab"
        {
            echo "Package: $1"
            echo "Version: $2"
            echo "Architecture: $ARCH"
            echo "Maintainer: dgx_spark.cluster lab <lab@invalid>"
            [ -z "$3" ] || echo "Depends: $3"
            echo "Description: $4 (LAB build)"
            echo " $1 built from its Go module source for the dgx_spark.cluster lab."
        } >"$work/$1/DEBIAN/control"
    }
    control kubelet "$version" "iptables, iproute2, mount, ethtool, ebtables, socat, conntrack" \
        "Kubernetes node agent"
    install -D -m 0755 "$BIN/kubelet" "$work/kubelet/usr/bin/kubelet"
    install -d -m 0755 "$work/kubelet/etc/kubernetes/manifests"   # as the upstream package
    # The unit and drop-in every kubeadm node uses (as the upstream packages install them).
    install -d "$work/kubelet/lib/systemd/system/kubelet.service.d"
    cat >"$work/kubelet/lib/systemd/system/kubelet.service" <<'UNIT'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
    cat >"$work/kubelet/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'UNIT'
# kubeadm's drop-in: the kubelet's kubeconfigs, its configuration file and the flags kubeadm and the node add.
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
UNIT
    # Like the upstream package: the kubelet is enabled at once and restarts every 10 s until kubeadm configures it.
    cat >"$work/kubelet/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now kubelet.service >/dev/null 2>&1 || true
fi
SH
    chmod 0755 "$work/kubelet/DEBIAN/postinst"

    control cri-tools "$cri_version" "" "CLI for CRI-compatible container runtimes (crictl)"
    install -D -m 0755 "$BIN/crictl" "$work/cri-tools/usr/bin/crictl"
    control kubectl "$version" "" "Kubernetes command-line tool"
    install -D -m 0755 "$BIN/kubectl" "$work/kubectl/usr/bin/kubectl"
    control kubeadm "$version" "kubelet (>= 1.30.0), kubectl (>= 1.30.0), cri-tools (>= 1.30.0)" \
        "Kubernetes cluster bootstrapping tool"
    install -D -m 0755 "$BIN/kubeadm" "$work/kubeadm/usr/bin/kubeadm"

    local name deb
    for name in kubelet cri-tools kubectl kubeadm; do
        dpkg-deb --root-owner-group -Zgzip -z1 --build "$work/$name" "$dir/" >/dev/null
    done
    : >"$dir/Packages"
    for deb in "$dir"/*.deb; do
        {
            dpkg-deb -f "$deb"
            echo "Filename: ./$(basename "$deb")"
            echo "Size: $(stat -c %s "$deb")"
            echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
            echo
        } >>"$dir/Packages"
    done
    gzip -9nc "$dir/Packages" >"$dir/Packages.gz"
    rm -rf "$work"
    echo "$sum" >"$dir/.sum"
}

# iptables userland (the nft backend, as on the nodes) with the libraries it loads, copied from this machine's
# Debian iptables package (tests/setup.sh installs it) into <dir>/rootfs.
add_iptables() {
    local root=$1/rootfs multi ext lib
    multi=$(command -v xtables-nft-multi || echo /usr/sbin/xtables-nft-multi)
    [ -x "$multi" ] || die "xtables-nft-multi not found: install Debian's iptables package (tests/setup.sh does)"
    ext=$(dirname "$(dpkg -L iptables 2>/dev/null | grep -m1 "/xtables/libxt_")")
    [ -d "$ext" ] || die "no iptables extensions in $ext"
    mkdir -p "$root/usr/sbin" "$root/etc" "$root/run" "$root/tmp" "$root$(dirname "$ext")"
    cp "$multi" "$root/usr/sbin/xtables-nft-multi"
    for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        ln -sf xtables-nft-multi "$root/usr/sbin/$tool"
    done
    cp -r "$ext" "$root$ext"        # the extensions iptables loads at run time (libxt_*.so, ...)
    # Every shared library those need, ld.so included, at the paths they name.
    for lib in $(ldd "$multi" "$ext"/*.so 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    [ ! -f /etc/protocols ] || cp /etc/protocols "$root/etc/protocols"
}

build_images() {
    local dir=$OUT/images sum work ref name busybox refs=()
    busybox=$(apt-cache policy busybox-static | awk '/Candidate:/ {print $2}')
    sum=$(sum_of cat "$OUT/images.txt" <(echo "$busybox") <(dpkg-query -W -f='${Version}' iptables 2>/dev/null) \
        <(cd "$STANDIN_DIR" && find . -type f -printf '%p %m\n' | sort && find . -type f -print0 | sort -z | xargs -0 cat))
    [ -f "$dir/.sum" ] && [ "$(cat "$dir/.sum")" = "$sum" ] && return 0
    command -v podman >/dev/null || die "podman is not installed: run tests/setup.sh"
    log "building the images kubeadm $KUBE_VERSION lists, and the lab's test image, into $dir"
    work=$(mktemp -d /var/tmp/dgxlab-images.XXXXXX)
    rm -rf "$dir"
    mkdir -p "$dir"
    while read -r ref; do
        [ -n "$ref" ] || continue
        name=${ref##*/}
        name=${name%%:*}
        [ -x "$BIN/$name" ] || die "no binary for image $ref in $BIN"
        mkdir -p "$work/$name"
        cp "$BIN/$name" "$work/$name/"
        [ "$name" = kube-proxy ] && add_iptables "$work/$name"
        # The real etcd image carries etcdctl and etcdutl beside etcd (backup-etcd.yml runs them in the container).
        if [ "$name" = etcd ]; then
            for tool in etcdctl etcdutl; do
                [ -x "$BIN/$tool" ] || die "no $tool in $BIN for image $ref"
                cp "$BIN/$tool" "$work/$name/"
            done
        fi
        case $name in
            # kube-proxy runs iptables-restore and friends: the upstream image carries them, so this one does too.
            kube-proxy) printf 'FROM scratch\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY rootfs/ /\nCOPY %s /usr/local/bin/%s\n' "$name" "$name" ;;
            etcd) printf 'FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY etcd etcdctl etcdutl /usr/local/bin/\n' ;;
            pause|coredns) printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$name" "$name" "$name" ;;
            # The static pod manifests name the command; PATH finds it here, as in the upstream images.
            *) printf 'FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY %s /usr/local/bin/%s\n' "$name" "$name" ;;
        esac >"$work/$name/Containerfile"
        podman build -q --network none --label dgxlab=1 -t "$ref" "$work/$name" >/dev/null
        refs+=("$ref")
    done <"$OUT/images.txt"
    # LAB test image: busybox from Debian's busybox-static, for the pods the lab tests schedule (HTTP, sleep).
    (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) || die "apt-get download busybox-static failed"
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
    mkdir -p "$work/test"
    cp "$work/bb/bin/busybox" "$work/test/busybox"
    printf 'FROM scratch\nLABEL dgxlab.purpose="LAB test image: busybox for test pods"\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nENTRYPOINT ["/bin/sh"]\n' \
        >"$work/test/Containerfile"
    podman build -q --network none --label dgxlab=1 -t "$TEST_IMAGE" "$work/test" >/dev/null
    refs+=("$TEST_IMAGE")
    # LAB STAND-IN for the apps: the test image's busybox with lab/app-standin's scripts (nc -ll forks one handler
    # per connection). Its layers below the scripts are the test image's, stored once in the archive.
    mkdir -p "$work/standin"
    cp -r "$STANDIN_DIR" "$work/standin/app-standin"
    printf 'FROM %s\nLABEL dgxlab.purpose="LAB STAND-IN for the apps (Ollama, Open WebUI, ComfyUI, vLLM, ...): busybox answering their endpoints, not the apps"\nCOPY app-standin/ /standin/\nENV PATH=/standin/bin:/bin\nENTRYPOINT ["/standin/entrypoint"]\n' \
        "$TEST_IMAGE" >"$work/standin/Containerfile"
    podman build -q --network none --pull=never --label dgxlab=1 -t "$STANDIN_IMAGE" "$work/standin" >/dev/null
    refs+=("$STANDIN_IMAGE")
    podman save -q -m -o "$dir/images.tar" "${refs[@]}"
    podman tag "$STANDIN_IMAGE" "$LOCAL_STANDIN_IMAGE"
    podman save -q -o "$dir/app-local.tar" "$LOCAL_STANDIN_IMAGE"
    refs+=("$LOCAL_STANDIN_IMAGE")
    printf '%s\n' "${refs[@]}" | grep -vxF "$LOCAL_STANDIN_IMAGE" >"$dir/images.txt"
    # The lab keeps only the archive: the images themselves are of no use to this machine's podman.
    podman rmi -f "${refs[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
    echo "$sum" >"$dir/.sum"
}

build_apt
build_images
echo "$OUT"
