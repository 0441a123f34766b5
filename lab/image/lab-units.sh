#!/bin/sh
# Writes the lab-only systemd units into the image root given as $1.
set -eu
root=$1
cat > "$root/etc/systemd/system/lab-nic-reset.service" <<'UNIT'
[Unit]
Description=LAB ONLY: fabric NICs start unaddressed at MTU 1500, like a real ConnectX-7
DefaultDependencies=no
Before=network-pre.target netplan-standin.service
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-nic-reset
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
cat > "$root/etc/systemd/system/netplan-standin.service" <<'UNIT'
[Unit]
Description=LAB STAND-IN: apply /etc/netplan at boot (what netplan + networkd do on DGX OS)
After=lab-nic-reset.service
Before=network.target ssh.service

[Service]
Type=oneshot
ExecStart=/usr/sbin/netplan apply
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
