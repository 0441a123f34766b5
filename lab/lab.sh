#!/usr/bin/env bash
# The lab: two systemd "Spark nodes" (spark-2959, spark-ba63) as podman containers on networks that
# this script creates and removes. LAB ONLY: never point anything here at real machines.
#
#   lab/lab.sh demo          install what is needed (tests/setup.sh), `up`, then run playbooks/start-cluster.yml
#                            against the lab inventory
#   lab/lab.sh up            build the image if needed (cached), create networks and nodes, wait for SSH; start the
#                            power listener (LAB stand-in for suspend and Wake-on-LAN: lab/power_listener.py)
#   lab/lab.sh down          remove exactly what `up` created (nodes, networks, .lab state); keeps the image
#   lab/lab.sh down --image  ... and the cached image too
#   lab/lab.sh check-podman  exit non-zero unless podman runs with the lab's settings and the netavark backend
#   lab/lab.sh require       exit non-zero unless the lab networks exist and route the lab addresses locally
#   lab/lab.sh status        nodes, networks, carrier of each fabric cable
#   lab/lab.sh restart NODE  restart a node container (a reboot): fabric NICs come back at MTU 1500, unaddressed
#                            unless the node persisted its configuration
#   lab/lab.sh cable PORT plug|unplug   PORT is port0 or port1: carrier on/off on both halves, both nodes
#   lab/lab.sh lan NODE plug|unplug     the node's LAN link up or down (a node that cannot be reached)
#   lab/lab.sh exec NODE CMD...         run a command as root inside a node (podman exec)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=$REPO/lab
STATE=${LAB_STATE_DIR:-$REPO/.lab}
# The lab's podman settings, named explicitly (network backend, storage, runtime): see the two files.
# LAB_CONTAINERS_CONF / LAB_STORAGE_CONF exist so the lab's own tests can show what a wrong backend does.
export CONTAINERS_CONF=${LAB_CONTAINERS_CONF:-$LAB_DIR/containers.conf}
export CONTAINERS_STORAGE_CONF=${LAB_STORAGE_CONF:-$LAB_DIR/storage.conf}
LAB_NETWORK_BACKEND=netavark
PREFIX=dgxlab
LAN_NET=$PREFIX-lan
LAN_SUBNET=192.168.86.0/24
LAN_GATEWAY=192.168.86.1
NODES=(spark-2959 spark-ba63)
declare -A NODE_IP=([spark-2959]=192.168.86.38 [spark-ba63]=192.168.86.39)
declare -A NODE_MAC=([spark-2959]=4c:bb:47:2e:29:59 [spark-ba63]=4c:bb:47:2c:ba:63)
# One internal network per cable half. Port 1 is cabled (carrier), port 0 is not, as on a one-cable pair.
FABRIC_NETS=(p1a p1b p0a p0b)
declare -A FABRIC_IF=([p1a]=enp1s0f1np1 [p1b]=enP2p1s0f1np1 [p0a]=enp1s0f0np0 [p0b]=enP2p1s0f0np0)
declare -A PORT_NETS=([port1]="p1a p1b" [port0]="p0a p0b")

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

image_tag() {
    local sum
    sum=$(find "$LAB_DIR/image" -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
    echo "localhost/dgx-spark-lab:$sum"
}

apt_mirror() {
    # The machine's own apt configuration names the mirror; nothing is written into the repo.
    local uri
    uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
    [ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
    [ -n "$uri" ] || die "no Debian mirror found in this machine's apt configuration"
    echo "$uri"
}

# The Debian packages the roles install on a node (image/debian-extra.txt: Longhorn's prerequisites), with whatever
# they need beyond the image, downloaded (not installed) into a local apt source in the image, /srv/lab-debian:
# the nodes reach no mirror, and a real node installs them from its archive the same way.
debian_extra() {
    local rootfs=$1 deb packages
    mapfile -t packages <"$LAB_DIR/image/debian-extra.txt"
    install -d -m 0755 "$rootfs/srv/lab-debian"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
    chroot "$rootfs" /bin/sh -euc 'apt-get clean
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -qq -y --download-only --no-install-recommends "$@" >/dev/null
        mv /var/cache/apt/archives/*.deb /srv/lab-debian/' sh "${packages[@]}" \
        || die "downloading ${packages[*]} for the nodes' apt source failed"
    : >"$rootfs/srv/lab-debian/Packages"
    for deb in "$rootfs"/srv/lab-debian/*.deb; do
        {
            dpkg-deb -f "$deb"
            echo "Filename: ./$(basename "$deb")"
            echo "Size: $(stat -c %s "$deb")"
            echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
            echo
        } >>"$rootfs/srv/lab-debian/Packages"
    done
}

build_image() {
    local tag rootfs started
    tag=$(image_tag)
    if podman image exists "$tag"; then
        log "image $tag is cached"
        return
    fi
    started=$(date +%s)
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    rootfs=$(mktemp -d /var/tmp/dgxlab-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '$rootfs'" EXIT
    log "debootstrap bookworm into $rootfs (about a minute)"
    debootstrap --variant=minbase --include="$(paste -sd, "$LAB_DIR/image/packages.txt")" \
        bookworm "$rootfs" "$(apt_mirror)" >"$STATE/debootstrap.log" 2>&1 \
        || { tail -n 30 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
    install -m 0755 "$LAB_DIR/image/nic-reset.sh" "$rootfs/usr/local/sbin/lab-nic-reset"
    # Real netplan (Debian's netplan.io) renders for systemd-networkd, as on DGX OS; see lab/image/networkd.
    install -D -m 0644 "$LAB_DIR/image/networkd/lab-no-udev.conf" \
        "$rootfs/etc/systemd/system/systemd-networkd.service.d/lab-no-udev.conf"
    install -D -m 0644 "$LAB_DIR/image/networkd/lab-networkd.conf" "$rootfs/etc/systemd/networkd.conf.d/lab.conf"
    install -m 0755 "$LAB_DIR/image/kubelet-cgroup-root.sh" "$rootfs/usr/local/sbin/lab-kubelet-cgroup-root"
    install -m 0755 "$LAB_DIR/image/lab-cni.sh" "$rootfs/usr/local/sbin/lab-cni"
    install -m 0755 "$LAB_DIR/image/lab-init.sh" "$rootfs/usr/local/sbin/lab-init"
    # /lib/modules: kube-proxy's DaemonSet mounts it from the node (the build machine's kernel has no modules to show).
    install -d -m 0755 "$rootfs/etc/netplan" "$rootfs/srv/lab-apt" "$rootfs/srv/lab-images" "$rootfs/opt/cni" \
        "$rootfs/srv/lab-addon-images" "$rootfs/lib/modules"
    # Debian installs the CNI plugins in /usr/lib/cni; containerd (and a real Spark) look in /opt/cni/bin.
    ln -s /usr/lib/cni "$rootfs/opt/cni/bin"
    sh "$LAB_DIR/image/lab-units.sh" "$rootfs"
    debian_extra "$rootfs"
    chroot "$rootfs" /bin/sh -eu <<'CHROOT'
: > /etc/machine-id
systemctl mask getty.target systemd-logind.service console-getty.service systemd-resolved.service >/dev/null 2>&1 || true
systemctl enable ssh lab-nic-reset.service systemd-networkd.service lab-kubelet-prep.service lab-cni.service >/dev/null 2>&1
# enable's Also= turns these on too; the lab wants neither (wait-online would hold the kubelet with a cable unplugged).
systemctl disable systemd-network-generator.service systemd-networkd-wait-online.service >/dev/null 2>&1
# No udevd in a node: with podman's read-write /sys it would receive the host's device uevents, and a coldplug
# would write "add" into every host device's uevent file. netplan only needs the udevadm binary.
systemctl mask systemd-networkd-wait-online.service systemd-udevd.service systemd-udevd-control.socket \
    systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service >/dev/null 2>&1
useradd -m -s /bin/bash spark
install -d -m 0700 -o spark -g spark /home/spark/.ssh
echo 'spark ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/spark
chmod 0440 /etc/sudoers.d/spark
printf 'UseDNS no\nPasswordAuthentication no\n' > /etc/ssh/sshd_config.d/lab.conf
# Nodes reach no package mirror: their only apt source is the lab's local repository of Kubernetes packages.
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/srv/lab-apt ./' > /etc/apt/sources.list.d/lab-kubernetes.list
echo 'deb [trusted=yes] file:/srv/lab-debian ./' > /etc/apt/sources.list.d/lab-debian.list
apt-get clean
rm -rf /var/lib/apt/lists/*
CHROOT
    tar -C "$rootfs" -c . | podman import --change 'CMD=["/usr/local/sbin/lab-init"]' --change 'STOPSIGNAL=SIGRTMIN+3' - "$tag" >/dev/null
    # Keep only the current image of the lab.
    podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/dgx-spark-lab:' | grep -v -x "$tag" \
        | xargs -r podman rmi -f >/dev/null 2>&1 || true
    rm -rf "$rootfs"
    trap - EXIT
    log "built $tag in $(( $(date +%s) - started )) s"
}

check_podman() {
    # The lab needs netavark: with CNI an --internal network's host bridge has no address, and the node
    # addresses would not be reachable from this machine.
    local backend
    command -v podman >/dev/null || die "podman is not installed: run tests/setup.sh"
    backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>&1) \
        || die "podman does not run with the lab's settings ($CONTAINERS_CONF, $CONTAINERS_STORAGE_CONF): $backend"
    [ "$backend" = "$LAB_NETWORK_BACKEND" ] || die "podman uses the '$backend' network backend with the lab's settings; \
the lab needs $LAB_NETWORK_BACKEND (named in lab/containers.conf). Install it with tests/setup.sh (apt-get install \
netavark aardvark-dns) and run lab/lab.sh up again. The lab keeps its own storage and network configuration \
(lab/storage.conf), so containers this machine runs with other podman settings are not affected."
}

lan_bridge() {
    podman network inspect "$LAN_NET" --format '{{.NetworkInterface}}' 2>/dev/null
}

require() {
    # With the lab down, 192.168.86.x would route out of this machine: refuse before connecting.
    local bridge dev ip
    check_podman
    podman network exists "$LAN_NET" || die "lab network $LAN_NET does not exist: run lab/lab.sh up"
    bridge=$(lan_bridge)
    for ip in "${NODE_IP[@]}"; do
        dev=$(ip -o route get "$ip" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
        [ "$dev" = "$bridge" ] || die "$ip does not route through the lab bridge $bridge (got '${dev:-none}'): run lab/lab.sh up"
    done
}

create_networks() {
    if ! podman network exists "$LAN_NET"; then
        podman network create --internal --disable-dns --subnet "$LAN_SUBNET" --gateway "$LAN_GATEWAY" "$LAN_NET" >/dev/null
    fi
    local n
    for n in "${FABRIC_NETS[@]}"; do
        podman network exists "$PREFIX-$n" \
            || podman network create --internal --disable-dns --ipam-driver none -o mtu=9000 "$PREFIX-$n" >/dev/null
    done
}

host_veth() {
    # The host-side peer of a node's interface: its ifindex is the node interface's iflink.
    local node=$1 ifname=$2 idx
    idx=$(podman exec "$node" cat "/sys/class/net/$ifname/iflink")
    ip -o link show | awk -F': ' -v i="$idx" '$1 == i {sub(/@.*/, "", $2); print $2}'
}

apply_cables() {
    local port state n node veth
    for port in port0 port1; do
        state=plug
        [ -f "$STATE/cable-$port" ] && state=$(cat "$STATE/cable-$port")
        [ "$port" = port0 ] && [ ! -f "$STATE/cable-$port" ] && state=unplug
        for n in ${PORT_NETS[$port]}; do
            for node in "${NODES[@]}"; do
                podman container exists "$node" || continue
                [ "$(podman inspect -f '{{.State.Running}}' "$node")" = true ] || continue
                veth=$(host_veth "$node" "${FABRIC_IF[$n]}")
                [ -n "$veth" ] || die "no host veth for $node ${FABRIC_IF[$n]}"
                if [ "$state" = plug ]; then ip link set "$veth" up; else ip link set "$veth" down; fi
            done
        done
    done
}

start_node() {
    local node=$1 tag=$2 args n
    if podman container exists "$node"; then
        if [ "$(podman inspect -f '{{.ImageName}}' "$node")" != "$tag" ]; then
            log "$node runs an older image: recreating it"
            podman rm -f --ignore -t 0 "$node" >/dev/null
        fi
    fi
    if podman container exists "$node"; then
        [ "$(podman inspect -f '{{.State.Running}}' "$node")" = true ] || podman start "$node" >/dev/null
        return
    fi
    args=(--network "$LAN_NET:ip=${NODE_IP[$node]},mac=${NODE_MAC[$node]},interface_name=enP7s7")
    # LAB ONLY: where the lab's suspend command asks the power listener to pause this node (see power_listener).
    mkdir -p "$STATE/power/$node"
    args+=(-v "$STATE/power/$node:/lab-power")
    for n in "${FABRIC_NETS[@]}"; do
        args+=(--network "$PREFIX-$n:interface_name=${FABRIC_IF[$n]}")
    done
    # A real kubelet in the node, as kind runs one: privileged, its own cgroup namespace (this host is cgroup v1),
    # and containerd's store on a volume, so that its overlay snapshots are not stacked on the node's overlay.
    podman volume exists "$PREFIX-$node-containerd" || podman volume create --label dgxlab=1 "$PREFIX-$node-containerd" >/dev/null
    podman run -d --name "$node" --hostname "$node" --privileged --systemd=always --cgroupns=private \
        --label dgxlab=1 "${args[@]}" \
        -v "$PREFIX-$node-containerd:/var/lib/containerd" \
        -v "$ARTIFACTS/apt:/srv/lab-apt:ro" -v "$ARTIFACTS/images:/srv/lab-images:ro" \
        -v "$ADDONS/images:/srv/lab-addon-images:ro" \
        "$tag" /usr/local/sbin/lab-init >/dev/null
}

authorize_lab_key() {
    # A plain file in the node (not a bind mount), so the node's user can manage its own keys as on a real one.
    podman exec "$1" sh -c 'f=/home/spark/.ssh/authorized_keys
        grep -qxF "$0" "$f" 2>/dev/null || { echo "$0" >> "$f"; chown spark:spark "$f"; chmod 0600 "$f"; }' \
        "$(cat "$STATE/id_ed25519.pub")"
}

# LAB ONLY: the stand-in for a Spark's suspend and its NIC's Wake-on-LAN. lab/power_listener.py pauses a node that
# asks for it (the lab inventory's power_suspend_command writes /lab-power/suspend-request) and unpauses it only when
# a magic packet for the node's MAC arrives on the lab LAN bridge (UDP 9 or 7). Logs to .lab/power.log.
power_listener() {
    local pidfile=$STATE/power-listener.pid node bridge args=()
    if [ -f "$pidfile" ] && grep -q power_listener.py "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
        return
    fi
    bridge=$(lan_bridge)
    [ -n "$bridge" ] || die "no bridge for $LAN_NET: the power listener has nothing to listen on"
    stop_stale_power_listeners "$bridge"
    for node in "${NODES[@]}"; do
        mkdir -p "$STATE/power/$node"
        args+=(--node "$node=${NODE_MAC[$node]}")
    done
    local before
    before=0
    [ -f "$STATE/power.log" ] && before=$(wc -l <"$STATE/power.log")
    nohup python3 "$LAB_DIR/power_listener.py" --state-dir "$STATE" --interface "$bridge" "${args[@]}" \
        </dev/null >>"$STATE/power-listener.out" 2>&1 &
    echo $! >"$pidfile"
    local deadline=$(( $(date +%s) + 10 ))
    until tail -n "+$((before + 1))" "$STATE/power.log" 2>/dev/null | grep -q "listening on UDP"; do
        kill -0 "$(cat "$pidfile")" 2>/dev/null || die "the power listener did not start: $(tail -n 5 "$STATE/power-listener.out")"
        [ "$(date +%s)" -lt "$deadline" ] || die "the power listener did not start listening within 10 s"
        sleep 0.2
    done
}

# A listener a lab of another checkout left running (its pid file is not ours) holds UDP 9 on the same bridge: the
# lab's networks and nodes have fixed names, so that lab is gone, and ours could not listen while it runs.
stop_stale_power_listeners() {
    local bridge=$1 cmdline pid
    for cmdline in /proc/[0-9]*/cmdline; do
        pid=${cmdline#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" = "$(cat "$STATE/power-listener.pid" 2>/dev/null)" ] && continue
        { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -q "power_listener\.py .*--interface $bridge " || continue
        echo "[lab] stopping a power listener left by another lab on $bridge (pid $pid)" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
}

stop_power_listener() {
    local pidfile=$STATE/power-listener.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if grep -q power_listener.py "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

wait_ssh() {
    local node deadline
    deadline=$(( $(date +%s) + 60 ))
    for node in "${NODES[@]}"; do
        until ssh -q -i "$STATE/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no \
                -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 "spark@${NODE_IP[$node]}" true 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || die "$node did not answer SSH within 60 s"
            sleep 0.5
        done
    done
}

build_artifacts() {
    # Real Kubernetes built from the Go module proxy: the packages the nodes install from (as a real node
    # installs from its Kubernetes package repository) and the images kubeadm needs (as a real node pulls them).
    ARTIFACTS=$("$LAB_DIR/build-node-artifacts.sh") || die "building the lab's Kubernetes packages and images failed"
    # The add-ons that are real in the lab (MetalLB), built from the Go module proxy; their charts go where the lab
    # inventory's chart sources point (.lab/charts), beside the lab charts of lab/charts (the modelled add-ons).
    ADDONS=$("$LAB_DIR/build-addons.sh") || die "building the lab's add-ons failed"
    mkdir -p "$STATE/charts"
    ln -sfn "$ADDONS/charts/metallb" "$STATE/charts/metallb"
    # LAB STAND-IN of a locally built app image, only in this archive (the lab inventory's image_archive for
    # ComfyUI and its model manager): the apps role imports it into a node's containerd when the node lacks it.
    ln -sfn "$ARTIFACTS/images/app-local.tar" "$STATE/app-local.tar"
}

import_images() {
    # What a real node pulls during kubeadm init and join, imported once into the node's containerd volume.
    # The pause image also goes under containerd's own default sandbox name: the collection leaves containerd's
    # sandbox image alone, and nothing in the lab can pull it.
    local node=$1
    podman exec "$node" sh -euc '
        until ctr version >/dev/null 2>&1; do sleep 0.2; done
        have=$(ctr -n k8s.io images ls -q)
        missing=0
        for ref in $(cat /srv/lab-images/images.txt); do
            printf "%s\n" "$have" | grep -qxF "$ref" || missing=1
        done
        if [ $missing = 1 ]; then
            nice -n 19 ctr -n k8s.io images import --all-platforms /srv/lab-images/images.tar >/dev/null
        fi
        for ref in $(cat /srv/lab-addon-images/images.txt); do
            printf "%s\n" "$have" | grep -qxF "$ref" && continue
            nice -n 19 ctr -n k8s.io images import --all-platforms /srv/lab-addon-images/addons.tar >/dev/null
            break
        done
        pause=$(grep "/pause:" /srv/lab-images/images.txt)
        sandbox=$(containerd config default | sed -n "s/^ *sandbox_image = \"\(.*\)\"$/\1/p")
        [ -z "$sandbox" ] || [ "$sandbox" = "$pause" ] || ctr -n k8s.io images tag --force "$pause" "$sandbox" >/dev/null
    ' || die "importing the lab images into $node failed"
}

up() {
    local started tag node
    started=$(date +%s)
    check_podman
    mkdir -p "$STATE"
    [ -f "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C dgxlab -f "$STATE/id_ed25519"
    build_image
    build_artifacts
    tag=$(image_tag)
    create_networks
    for node in "${NODES[@]}"; do start_node "$node" "$tag"; done
    apply_cables
    for node in "${NODES[@]}"; do
        authorize_lab_key "$node"
        import_images "$node"
        # Like a real node, whose apt lists already know its Kubernetes package repository.
        podman exec "$node" apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed in $node"
    done
    require
    power_listener
    wait_ssh
    log "lab up in $(( $(date +%s) - started )) s: ${NODES[*]} on $LAN_NET ($LAN_SUBNET)"
}

down() {
    local n node
    stop_power_listener
    for node in "${NODES[@]}"; do
        # A node the lab's suspend left paused.
        if [ "$(podman inspect -f '{{.State.Status}}' "$node" 2>/dev/null)" = paused ]; then
            podman unpause "$node" >/dev/null 2>&1 || true
        fi
    done
    podman rm -f --ignore -t 0 "${NODES[@]}" >/dev/null
    for node in "${NODES[@]}"; do
        podman volume rm -f "$PREFIX-$node-containerd" >/dev/null 2>&1 || true
    done
    for n in "$LAN_NET" "${FABRIC_NETS[@]/#/$PREFIX-}"; do
        podman network rm -f "$n" >/dev/null 2>&1 || true
    done
    rm -rf "$STATE"
    if [ "${1:-}" = --image ]; then
        podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/dgx-spark-lab:' | xargs -r podman rmi -f >/dev/null
    fi
    log "lab removed"
}

status() {
    local node n
    for node in "${NODES[@]}"; do
        printf '%-12s %s\n' "$node" "$(podman inspect -f '{{.State.Status}}' "$node" 2>/dev/null || echo absent)"
    done
    for n in "$LAN_NET" "${FABRIC_NETS[@]/#/$PREFIX-}"; do
        printf '%-12s %s\n' "$n" "$(podman network exists "$n" && echo present || echo absent)"
    done
    for n in port0 port1; do printf '%-12s %s\n' "$n" "$(cat "$STATE/cable-$n" 2>/dev/null || { [ $n = port0 ] && echo unplug || echo plug; })"; done
    printf '%-12s %s\n' power-listener "$(grep -qs power_listener.py "/proc/$(cat "$STATE/power-listener.pid" 2>/dev/null)/cmdline" && echo running || echo stopped)"
}

cmd=${1:-}
shift || true
case "$cmd" in
    up) up ;;
    down) down "${1:-}" ;;
    require) require ;;
    image) check_podman; mkdir -p "$STATE"; build_image ;;
    check-podman) check_podman; echo "podman: $LAB_NETWORK_BACKEND network backend, storage $(podman info --format '{{.Store.GraphRoot}}')" ;;
    status) status ;;
    restart)
        [ -n "${1:-}" ] || die "usage: lab.sh restart NODE"
        podman restart -t 10 "$1" >/dev/null
        apply_cables
        wait_ssh
        ;;
    cable)
        [[ "${1:-}" =~ ^port[01]$ && "${2:-}" =~ ^(plug|unplug)$ ]] || die "usage: lab.sh cable port0|port1 plug|unplug"
        echo "$2" > "$STATE/cable-$1"
        apply_cables
        ;;
    lan)
        [[ -n "${NODE_IP[${1:-}]:-}" && "${2:-}" =~ ^(plug|unplug)$ ]] || die "usage: lab.sh lan NODE plug|unplug"
        veth=$(host_veth "$1" enP7s7)
        if [ "$2" = plug ]; then ip link set "$veth" up; else ip link set "$veth" down; fi
        ;;
    exec) node=$1; shift; podman exec "$node" "$@" ;;
    demo)
        "$REPO/tests/setup.sh"
        up
        cd "$REPO"
        "$REPO/.venv/bin/ansible-playbook" -i inventory/lab/hosts.yml playbooks/start-cluster.yml "$@"
        ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
esac
