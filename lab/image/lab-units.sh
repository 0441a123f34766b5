#!/bin/sh
# Writes the lab-only systemd units into the image root given as $1.
set -eu
root=$1
cat > "$root/etc/systemd/system/lab-nic-reset.service" <<'UNIT'
[Unit]
Description=LAB ONLY: fabric NICs start unaddressed at MTU 1500, like a real ConnectX-7
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-nic-reset
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
cat > "$root/etc/systemd/system/lab-kubelet-prep.service" <<'UNIT'
[Unit]
Description=LAB ONLY: shared mount propagation and kubelet cgroup roots for a kubelet nested in a container
DefaultDependencies=no
Before=containerd.service kubelet.service
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mount --make-rshared /
ExecStart=/usr/local/sbin/lab-kubelet-cgroup-root

[Install]
WantedBy=multi-user.target
UNIT
cat > "$root/etc/systemd/system/lab-cni.service" <<'UNIT'
[Unit]
Description=LAB ONLY: the lab pod network (bridge CNI on the Node's podCIDR, routes over the fabric) until the cni role exists
After=network.target

[Service]
ExecStart=/usr/local/sbin/lab-cni
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
# As kind's 11-kind.conf: on cgroup v1 the kubelet's cgroup root must exist in the name=systemd hierarchy.
mkdir -p "$root/etc/systemd/system/kubelet.service.d"
cat > "$root/etc/systemd/system/kubelet.service.d/11-lab-nested.conf" <<'UNIT'
# LAB ONLY: a kubelet nested in a podman node (see lab/lab.sh)
[Service]
ExecStartPre=/bin/sh -euc "[ -f /sys/fs/cgroup/cgroup.controllers ] || mkdir -p /sys/fs/cgroup/systemd/kubelet"
UNIT
# Pods whose PID 1 ignores SIGTERM (sleep, httpd) would hold a node's shutdown for systemd's default 90 s.
mkdir -p "$root/etc/systemd/system.conf.d"
printf '# LAB ONLY: podman stop/restart of a node with pods\n[Manager]\nDefaultTimeoutStopSec=10s\n' \
    > "$root/etc/systemd/system.conf.d/90-lab-stop-timeout.conf"
