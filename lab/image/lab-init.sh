#!/bin/sh
# LAB ONLY: the nodes' entrypoint (as kind's entrypoint fixes cgroups before systemd starts). On this cgroup-v1 host,
# podman 4.3 with --cgroupns=private mounts the host's whole name=systemd hierarchy over the node's own (its mount
# root is "/../.."): both nodes' systemd would then manage one shared tree, and a node shutting down removes the other
# node's empty cgroups (podman exec into it then fails: "error adding pid ... cgroup.procs: no such file or
# directory"). Unmount that bind (and podman's /dev/null mask over its release_agent, which only the host's root of the
# hierarchy has), so the node's systemd sees only its own cgroup namespace; then start systemd.
while awk '$5 == "/sys/fs/cgroup/systemd" && $4 ~ /^\/\.\./ {found = 1} END {exit !found}' /proc/self/mountinfo; do
    umount /sys/fs/cgroup/systemd/release_agent 2>/dev/null
    umount /sys/fs/cgroup/systemd || break
done
exec /sbin/init "$@"
