#!/usr/bin/env bash
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Build the kernel-tier VM image (Debian 12 + linux-image-amd64 + rdma-core/perftest) into a cache dir:
#   <cache>/disk.img  <cache>/vmlinuz  <cache>/initrd.img  <cache>/id_ed25519(.pub)  <cache>/stamp
# Skipped when <cache>/stamp matches this script's checksum.  Needs root, debootstrap and e2fsprogs.
# The package mirror is read from this machine's own apt configuration; no host name is written here.
set -euo pipefail

CACHE=${1:?usage: build-image.sh <cache-dir>}
SELF=$(readlink -f "$0")
STAMP=$(sha256sum "$SELF" | cut -d' ' -f1)
SUITE=bookworm

if [[ -f $CACHE/stamp && $(cat "$CACHE/stamp") == "$STAMP" && -f $CACHE/disk.img ]]; then
    echo "kernel image: cached ($CACHE)"
    exit 0
fi

mirror() {
    local uri=""
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        # deb822: the URIs of the first stanza whose Suites name the suite itself
        uri=$(awk -v suite="$SUITE" 'BEGIN { RS = "" }
            { u = ""; ok = 0
              n = split($0, lines, "\n")
              for (i = 1; i <= n; i++) {
                  if (lines[i] ~ /^URIs:/) { split(lines[i], f, /[ \t]+/); u = f[2] }
                  if (lines[i] ~ /^Suites:/) { m = split(lines[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) ok = 1 }
              }
              if (ok && u != "") { print u; exit } }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri && -f /etc/apt/sources.list ]]; then
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
    fi
    [[ -n $uri ]] || { echo "no apt source for $SUITE in this machine's apt configuration" >&2; exit 1; }
    echo "$uri"
}

command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
mkdir -p "$CACHE"
ROOTFS=$(mktemp -d /var/tmp/roce-kernel-rootfs.XXXXXX)
cleanup() { rm -rf "$ROOTFS"; }
trap cleanup EXIT

PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,iproute2,procps,openssh-server,python3,linux-image-amd64,initramfs-tools
PACKAGES+=,rdma-core,ibverbs-providers,ibverbs-utils,perftest
echo "kernel image: debootstrap $SUITE (this takes a few minutes)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }

# --- guest configuration ---------------------------------------------------------------------------------
# NIC names as on a DGX Spark: management enP7s7, fabric half enp1s0f1np1 (matched by the MACs run.sh uses).
cat >"$ROOTFS/etc/systemd/network/10-lan.link" <<'EOF'
[Match]
MACAddress=52:54:00:12:34:01 52:54:00:12:34:02
[Link]
Name=enP7s7
EOF
cat >"$ROOTFS/etc/systemd/network/20-fabric.link" <<'EOF'
[Match]
MACAddress=52:54:00:ab:cd:01 52:54:00:ab:cd:02
[Link]
Name=enp1s0f1np1
EOF
# QEMU user networking: static address, no gateway (SSH arrives through the loopback host-forward only).
cat >"$ROOTFS/etc/systemd/network/10-lan.network" <<'EOF'
[Match]
Name=enP7s7
[Network]
Address=10.0.2.15/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
# The fabric: address, MTU 9000 and the soft-RoCE device, from the node number on the kernel command line.
cat >"$ROOTFS/usr/local/sbin/roce-lab-fabric" <<'EOF'
#!/bin/sh
set -eu
node=$(sed -n 's/.*roce_lab.node=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$node" ] || exit 0
dev=enp1s0f1np1
ip link set "$dev" mtu 9000 up
ip addr add "10.10.10.$node/24" dev "$dev"
modprobe -a ib_uverbs rdma_rxe
rdma link add rocep1s0f1 type rxe netdev "$dev"
EOF
chmod 755 "$ROOTFS/usr/local/sbin/roce-lab-fabric"
cat >"$ROOTFS/etc/systemd/system/roce-lab-fabric.service" <<'EOF'
[Unit]
Description=Kernel tier fabric: address, MTU 9000, soft-RoCE device
BindsTo=sys-subsystem-net-devices-enp1s0f1np1.device
After=sys-subsystem-net-devices-enp1s0f1np1.device
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/roce-lab-fabric
[Install]
WantedBy=multi-user.target
EOF

mkdir -p "$ROOTFS/root/.ssh"
rm -f "$CACHE/id_ed25519" "$CACHE/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C roce-kernel-tier -f "$CACHE/id_ed25519"
install -m 600 "$CACHE/id_ed25519.pub" "$ROOTFS/root/.ssh/authorized_keys"
echo 'UseDNS no' >"$ROOTFS/etc/ssh/sshd_config.d/roce-lab.conf"
: >"$ROOTFS/etc/machine-id"
echo roce-vm >"$ROOTFS/etc/hostname"
chroot "$ROOTFS" systemctl enable systemd-networkd.service roce-lab-fabric.service ssh.service >/dev/null 2>&1
# rdma-load-modules@rdma loads iSER and NFS-over-RDMA modules and holds network.target (so ssh) back for
# many seconds under emulation; the fabric script loads the two modules the test needs itself.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
            man-db.timer getty@tty1.service systemd-networkd-wait-online.service modprobe@drm.service \
            rdma-load-modules@rdma.service; do
    chroot "$ROOTFS" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# A small initramfs (virtio disk + ext4 only) unpacks much faster under emulation than MODULES=most.
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOTFS/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >>"$ROOTFS/etc/initramfs-tools/modules"
chroot "$ROOTFS" update-initramfs -u -k all >/dev/null 2>&1
chroot "$ROOTFS" apt-get clean

cp "$(readlink -f "$ROOTFS"/boot/vmlinuz-*)" "$CACHE/vmlinuz"
cp "$(readlink -f "$ROOTFS"/boot/initrd.img-*)" "$CACHE/initrd.img"
rm -f "$CACHE/disk.img"
mkfs.ext4 -q -L root -d "$ROOTFS" "$CACHE/disk.img" 3G
echo "$STAMP" >"$CACHE/stamp"
echo "kernel image: built ($(du -sh "$CACHE/disk.img" | cut -f1) used)"
