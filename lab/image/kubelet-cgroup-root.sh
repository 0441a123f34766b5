#!/bin/sh
# LAB ONLY (what kind's entrypoint does on a cgroup-v1 host): the kubelet's cgroup roots (/kubelet for its
# cgroupRoot, /kubelet.slice for the systemd driver) must exist in every v1 hierarchy of the node's private
# cgroup namespace, or the kubelet fails with 'cgroup ["kubelet"] has some missing paths'. Runs at every boot.
set -eu
mount --make-rprivate /sys/fs/cgroup
awk '$3 == "cgroup" {print $2}' /proc/self/mounts | sort -u | while read -r hierarchy; do
    for root in /kubelet /kubelet.slice; do
        mkdir -p "$hierarchy$root"
        if [ "$hierarchy" = /sys/fs/cgroup/cpuset ]; then
            cat "$hierarchy/cpuset.cpus" >"$hierarchy$root/cpuset.cpus"
            cat "$hierarchy/cpuset.mems" >"$hierarchy$root/cpuset.mems"
        fi
        mountpoint -q "$hierarchy$root" || mount --bind "$hierarchy$root" "$hierarchy$root"
    done
done
