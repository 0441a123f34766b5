#!/bin/sh
# LAB ONLY. A real ConnectX-7 port comes up unaddressed at MTU 1500 unless the node's own network
# configuration says otherwise. podman sets the fabric veths to the bridge MTU (9000) at every start,
# which would hide whether the collection persisted anything, so reset them before networking runs.
for dev in enp1s0f0np0 enp1s0f1np1 enP2p1s0f0np0 enP2p1s0f1np1; do
    [ -e "/sys/class/net/$dev" ] || continue
    ip -4 addr flush dev "$dev" 2>/dev/null
    ip link set dev "$dev" mtu 1500 2>/dev/null
done
exit 0
