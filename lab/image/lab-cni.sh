#!/bin/sh
# LAB ONLY: the lab's pod network, in place of Calico (the cni role installs a LAB CHART that models Calico's
# objects; Calico's operator and images cannot be had here). Like calico-node it runs on every node, once joined: it
# writes a CNI configuration for Debian's containernetworking-plugins (bridge, host-local IPAM on this Node's
# podCIDR) and routes every other Node's podCIDR to that Node's InternalIP, which is its fabric address. It asks
# the API with the kubelet's own credentials, and rewrites the file when the podCIDR changes (after a re-join).
conf=/etc/cni/net.d/10-lab-bridge.conflist
kubeconfig=/etc/kubernetes/kubelet.conf
me=$(hostname)
cri=unix:///run/containerd/containerd.sock
recheck=/run/lab-cni.recheck
# A real node has a default route (its LAN gateway); the lab's internal networks give none. Service addresses need
# a route before kube-proxy's DNAT can pick the pod (a connect() without one fails: network is unreachable), so the
# service range goes to the LAN, as the default route would send it. The lab inventory's kubernetes_service_cidr.
service_cidr=${LAB_SERVICE_CIDR:-10.96.0.0/12}
while :; do
    if ! ip route show "$service_cidr" | grep -q . && ip route replace "$service_cidr" dev enP7s7 2>/dev/null; then
        echo "lab-cni: service range $service_cidr via enP7s7"
    fi
    if [ -f "$kubeconfig" ]; then
        kubectl --kubeconfig "$kubeconfig" --request-timeout=3s get nodes -o \
            jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' \
            2>/dev/null | while read -r name cidr address; do
            if [ -z "$cidr" ] || [ -z "$address" ]; then continue; fi
            if [ "$name" = "$me" ]; then
                want=$(cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "lab-bridge",
  "_comment": "LAB ONLY (written by lab-cni): bridge + host-local on this Node's podCIDR, in place of Calico",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
)
                # The bridge plugin refuses a cni0 that carries another gateway than this podCIDR's first address
                # ("cni0 already has an IP address different from ..."), and every new pod on the node then fails.
                # A sandbox still being made from the old file as it is rewritten makes cni0 again with the old
                # gateway, after the delete below: so check the bridge on every pass, not only on a rewrite.
                gateway=${cidr%.*/*}.1/${cidr#*/}
                bridge_addresses=$(ip -4 -o addr show dev cni0 2>/dev/null | awk '{print $4}')
                if [ -n "$bridge_addresses" ] && [ "$bridge_addresses" != "$gateway" ]; then
                    ip link delete cni0 2>/dev/null || true
                    echo "lab-cni: cni0 had $(echo "$bridge_addresses" | tr '\n' ' '), not $gateway: removed, the bridge plugin makes it again"
                    echo 15 >"$recheck"
                fi
                if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
                    # A re-joined Node gets a new podCIDR: the bridge plugin refuses a cni0 that still carries the
                    # old gateway address, so the bridge goes and the plugin makes it again.
                    ip link delete cni0 2>/dev/null || true
                    mkdir -p "$(dirname "$conf")"
                    printf '%s\n' "$want" >"$conf.tmp" && mv "$conf.tmp" "$conf"
                    echo "lab-cni: $conf for podCIDR $cidr"
                    # Check the pods for the next 30 s (below): containerd reloads the file a moment later, so a
                    # sandbox made just after the rewrite can still get an old address.
                    echo 15 >"$recheck"
                fi
                # Pods the kubelet started from an old file keep an address on a bridge that is gone: their
                # sandboxes go, and the kubelet makes them again on the new bridge. Host-network pods are left
                # alone. The lab's podCIDRs are /24s, so an address outside is one without the CIDR's first three
                # octets.
                left=$(cat "$recheck" 2>/dev/null || echo 0)
                if [ "$left" -gt 0 ]; then
                    echo $((left - 1)) >"$recheck"
                    prefix=${cidr%.*/*}.
                    for sandbox in $(crictl --runtime-endpoint "$cri" pods -q 2>/dev/null); do
                        ip=$(crictl --runtime-endpoint "$cri" inspectp -o go-template \
                            --template '{{.status.linux.namespaces.options.network}} {{.status.network.ip}}' \
                            "$sandbox" 2>/dev/null)
                        case "$ip" in
                            "POD $prefix"*|NODE*|"") ;;
                            POD*)
                                crictl --runtime-endpoint "$cri" stopp "$sandbox" >/dev/null 2>&1
                                crictl --runtime-endpoint "$cri" rmp "$sandbox" >/dev/null 2>&1
                                echo "lab-cni: pod sandbox $sandbox (${ip#POD }, outside $cidr) made again on the new bridge" ;;
                        esac
                    done
                fi
            elif ! ip route show "$cidr" | grep -q "via $address "; then
                ip route replace "$cidr" via "$address" && echo "lab-cni: $cidr via $address ($name)"
            fi
        done
    fi
    sleep 2
done
