#!/usr/bin/env bash
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Kernel tier: roce_check for real, on soft-RoCE, in two QEMU VMs (software emulation, TCG).
#
#   tests/kernel/run.sh            build the image if needed (cached in .cache/kernel), boot two VMs, run
#                                  tests/kernel/playbook.yml against them, tear them down, print the duration
#   KEEP=1 tests/kernel/run.sh     keep the work dir (serial logs, inventory) after the run
#   CAPTURE=<dir> ...              also save raw tool output from VM 1 (ibv_devinfo, rdma link, ip -j, sysfs GIDs,
#                                  ib_write_bw client) into <dir>, for unit-test fixtures
#
# Networks: each VM has QEMU user networking (restrict=on: no packet leaves for any outside address; SSH comes in
# through a host-forward bound to 127.0.0.1) and one fabric NIC, a point-to-point cable made of a QEMU socket
# netdev on 127.0.0.1 (host_mtu 9000, speed 200000 so the guest reports the Spark's 200G link speed).
# Needs root (debootstrap), qemu-system-x86 and qemu-utils, debootstrap, e2fsprogs and the project venv.

# Commands for the VMs are single-quoted on purpose: they expand inside the VM, not here.
# shellcheck disable=SC2016
set -euo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=$REPO/.cache/kernel
VENV=${VENV:-$REPO/.venv}
WORK=$(mktemp -d /tmp/roce-kernel.XXXXXX)
PIDS=()

log() { printf '[kernel %3ss] %s\n' "$(($(date +%s) - START))" "$*"; }

teardown() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then
        echo "work dir kept: $WORK (serial logs vm1.log vm2.log)"
    else
        rm -rf "$WORK"
    fi
    log "duration $(($(date +%s) - START)) s, result: $([[ $rc == 0 ]] && echo PASS || echo "FAIL (rc $rc)")"
    exit $rc
}
trap teardown EXIT

command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing: apt-get install --no-install-recommends qemu-system-x86 qemu-utils" >&2; exit 2; }
[[ -x $VENV/bin/ansible-playbook ]] || { echo "no ansible-playbook in $VENV" >&2; exit 2; }

log "image"
bash "$REPO/tests/kernel/build-image.sh" "$CACHE"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SSH1=$(free_port); SSH2=$(free_port); CABLE=$(free_port)

boot() {  # boot <node> <fabric netdev spec>
    local node=$1 fabric=$2
    qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -display none -daemonize \
        -pidfile "$WORK/vm$node.pid" -serial "file:$WORK/vm$node.log" \
        -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 quiet mitigations=off systemd.hostname=vm$node roce_lab.node=$node" \
        -drive "file=$CACHE/disk.img,if=virtio,format=raw" -snapshot \
        -netdev "user,id=lan,net=10.0.2.0/24,restrict=on,hostfwd=tcp:127.0.0.1:$([[ $node == 1 ]] && echo "$SSH1" || echo "$SSH2")-:22" \
        -device "virtio-net-pci,netdev=lan,mac=52:54:00:12:34:0$node" \
        -netdev "socket,id=fabric,$fabric" \
        -device "virtio-net-pci,netdev=fabric,mac=52:54:00:ab:cd:0$node,host_mtu=9000,speed=200000,duplex=full"
    PIDS+=("$(cat "$WORK/vm$node.pid")")
}

log "boot vm1 (ssh 127.0.0.1:$SSH1) and vm2 (ssh 127.0.0.1:$SSH2), fabric cable 127.0.0.1:$CABLE"
boot 1 "listen=127.0.0.1:$CABLE"
boot 2 "connect=127.0.0.1:$CABLE"

SSH_OPTS=(-i "$CACHE/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=5 -o BatchMode=yes -n)
wait_ssh() {
    local port=$1
    for _ in $(seq 120); do
        if ssh "${SSH_OPTS[@]}" -p "$port" root@127.0.0.1 'systemctl is-active -q roce-lab-fabric' 2>/dev/null; then
            return 0
        fi
        sleep 2
    done
    echo "VM on port $port did not come up with its fabric; see $WORK/vm*.log" >&2
    return 1
}
wait_ssh "$SSH1"
wait_ssh "$SSH2"
log "both VMs up, soft-RoCE active"

# The RoCE v2 GID of the fabric address, looked up the way roce_check does (the index differs per kernel).
GID_INDEX_SH='cd /sys/class/infiniband/rocep1s0f1/ports/1 && for i in $(ls gids | sort -n); do
    [ "$(cat gid_attrs/types/$i 2>/dev/null)" = "RoCE v2" ] || continue
    case "$(cat gids/$i)" in *:ffff:0a0a:*) echo "$i"; break;; esac; done'

capture() {
    local dir=$1 srv cli
    mkdir -p "$dir"
    vm1() { ssh "${SSH_OPTS[@]}" -p "$SSH1" root@127.0.0.1 "$@"; }
    vm2() { ssh "${SSH_OPTS[@]}" -p "$SSH2" root@127.0.0.1 "$@"; }
    vm1 'uname -r; ibv_devinfo' >"$dir/ibv_devinfo.txt"
    vm1 'ibv_devinfo -v' >"$dir/ibv_devinfo-v.txt"
    vm1 'rdma link show' >"$dir/rdma-link.txt"
    vm1 'ip -j addr show' >"$dir/ip-j-addr.json"
    vm1 'cd /sys/class/infiniband/rocep1s0f1/ports/1 && grep -H . state phys_state rate link_layer &&
        for i in $(ls gids | sort -n); do g=$(cat gids/$i); [ "$g" = 0000:0000:0000:0000:0000:0000:0000:0000 ] && continue;
        echo "gids/$i:$g types/$i:$(cat gid_attrs/types/$i) ndevs/$i:$(cat gid_attrs/ndevs/$i)"; done;
        cd /sys/class/net/enp1s0f1np1 && grep -H . mtu speed operstate' >"$dir/sysfs.txt"
    srv=$(vm2 "$GID_INDEX_SH"); cli=$(vm1 "$GID_INDEX_SH")
    vm2 "timeout 90 ib_write_bw -d rocep1s0f1 -x $srv -F --report_gbits -D 3 -p 18600" >"$dir/ib_write_bw-server.txt" 2>&1 &
    vm2 'for i in $(seq 60); do ss -ltn | grep -q ":18600 " && exit 0; sleep 1; done; exit 1'
    vm1 "timeout 90 ib_write_bw -d rocep1s0f1 -x $cli -F --report_gbits -D 3 -p 18600 10.10.10.2" >"$dir/ib_write_bw-client.txt" 2>&1 || true
    wait
    echo "gid index vm1 $cli vm2 $srv" >"$dir/gid-index.txt"
}
if [[ -n ${CAPTURE:-} ]]; then
    capture "$CAPTURE"
    log "captured raw output into $CAPTURE"
fi

cat >"$WORK/inventory.yml" <<EOF
all:
  children:
    roce_lab:
      hosts:
        vm1: {ansible_port: $SSH1, roce_lab_fabric_ip: 10.10.10.1}
        vm2: {ansible_port: $SSH2, roce_lab_fabric_ip: 10.10.10.2}
      vars:
        ansible_host: 127.0.0.1
        ansible_user: root
        ansible_ssh_private_key_file: $CACHE/id_ed25519
        ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        ansible_python_interpreter: /usr/bin/python3
EOF

log "playbook"
cd "$REPO"
ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_FORKS=2 ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp" \
    "$VENV/bin/ansible-playbook" -i "$WORK/inventory.yml" tests/kernel/playbook.yml
log "playbook passed"
