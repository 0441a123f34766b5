# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure validation of the cluster inventory: one clear message per problem, nothing else.

Input is plain data (``nodes``: name -> per-node values, ``settings``: the cluster-wide values,
``groups``: group -> host names), so the checks run the same under a filter plugin or a unit test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", re.IGNORECASE)
MTU_MIN, MTU_MAX = 1280, 9216


def _network(value, name, problems):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        problems.append("%s: '%s' is not a valid network in CIDR form (%s)" % (name, value, exc))
        return None


def _address(value, name, problems):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        problems.append("%s: '%s' is not a valid IP address" % (name, value))
        return None


def _interface(value, name, problems):
    try:
        iface = ipaddress.ip_interface(str(value))
    except ValueError:
        problems.append("%s: '%s' is not an address with a prefix, like 10.10.10.1/24" % (name, value))
        return None
    if "/" not in str(value):
        problems.append("%s: '%s' has no prefix length; write it like 10.10.10.1/24" % (name, value))
        return None
    if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        problems.append("%s: '%s' is the network or broadcast address of its subnet" % (name, value))
        return None
    return iface


def _pool_range(entry, name, problems):
    text = str(entry)
    if "-" in text:
        first, last = text.split("-", 1)
        lo, hi = _address(first.strip(), name, problems), _address(last.strip(), name, problems)
        if lo is None or hi is None:
            return None
        if int(hi) < int(lo):
            problems.append("%s: range '%s' ends before it starts" % (name, text))
            return None
        return lo, hi
    net = _network(text, name, problems)
    if net is None:
        return None
    return net.network_address, net.broadcast_address


# Overlaps that an existing cluster may already live with: reported, not refused. The old toolkit's pod
# CIDR 192.168.0.0/16 contains the LAN 192.168.86.0/24; a running cluster cannot change it in place.
TOLERATED_OVERLAPS = frozenset([("spark_lan_subnet", "kubernetes_pod_cidr")])


def check_inventory(nodes, settings, groups):
    """Return (problems, warnings): problems stop the run, warnings are shown."""
    problems = []
    warnings = []
    control = list(groups.get("control_plane") or [])
    workers = list(groups.get("workers") or [])
    if len(control) != 1:
        problems.append("group control_plane must hold exactly one node; it holds %d (%s)"
                        % (len(control), ", ".join(control) or "none"))
    if not workers:
        problems.append("group workers holds no node")
    both = sorted(set(control) & set(workers))
    if both:
        problems.append("%s is in both control_plane and workers" % ", ".join(both))

    lan = _network(settings.get("spark_lan_subnet"), "spark_lan_subnet", problems)
    ports = settings.get("fabric_ports") or []
    if not ports:
        problems.append("fabric_ports is empty: list each fabric half with its subnet and candidates")
    fabric_nets = []
    for index, port in enumerate(ports):
        net = _network(port.get("subnet"), "fabric_ports[%d].subnet" % index, problems)
        fabric_nets.append(net)
        if not port.get("candidates"):
            problems.append("fabric_ports[%d].candidates is empty" % index)

    named = [("spark_lan_subnet", lan)] + [("fabric_ports[%d].subnet" % i, n) for i, n in enumerate(fabric_nets)]
    for extra in ("kubernetes_pod_cidr", "kubernetes_service_cidr"):
        named.append((extra, _network(settings.get(extra), extra, problems)))
    for i, (name_a, net_a) in enumerate(named):
        for name_b, net_b in named[i + 1:]:
            if net_a is not None and net_b is not None and net_a.overlaps(net_b):
                if (name_a, name_b) in TOLERATED_OVERLAPS:
                    warnings.append("%s (%s) overlaps %s (%s): pods may get addresses that collide with LAN hosts; "
                                    "exclude the LAN from the CNI's IP pool or pick a pod CIDR outside it for a new cluster"
                                    % (name_b, net_b, name_a, net_a))
                else:
                    problems.append("%s (%s) overlaps %s (%s)" % (name_a, net_a, name_b, net_b))

    mtu = settings.get("fabric_mtu")
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not MTU_MIN <= mtu <= MTU_MAX:
        problems.append("fabric_mtu: %r is outside %d..%d" % (mtu, MTU_MIN, MTU_MAX))

    seen = {}

    def claim(ip, owner):
        if ip is None:
            return
        if str(ip) in seen:
            problems.append("%s is used twice: by %s and by %s" % (ip, seen[str(ip)], owner))
        else:
            seen[str(ip)] = owner

    for name in sorted(nodes):
        node = nodes[name]
        lan_ip = _address(node.get("spark_lan_ip"), "%s: spark_lan_ip" % name, problems)
        if lan_ip is not None and lan is not None and lan_ip not in lan:
            problems.append("%s: spark_lan_ip %s is outside spark_lan_subnet %s" % (name, lan_ip, lan))
        claim(lan_ip, "%s spark_lan_ip" % name)
        addresses = node.get("spark_fabric_addresses") or []
        if len(addresses) != len(ports):
            problems.append("%s: spark_fabric_addresses has %d entries but fabric_ports has %d; give one address per fabric half"
                            % (name, len(addresses), len(ports)))
        for index, value in enumerate(addresses):
            label = "%s: spark_fabric_addresses[%d]" % (name, index)
            iface = _interface(value, label, problems)
            if iface is None:
                continue
            net = fabric_nets[index] if index < len(fabric_nets) else None
            if net is not None and iface.network != net:
                problems.append("%s %s is not in its half's subnet %s" % (label, value, net))
            claim(iface.ip, label)
        mac = node.get("spark_wol_mac")
        if mac is not None and not MAC_RE.match(str(mac)):
            problems.append("%s: spark_wol_mac '%s' is not a MAC address like 4c:bb:47:2e:29:59" % (name, mac))

    api = _address(settings.get("kubernetes_api_address"), "kubernetes_api_address", problems)
    if api is not None and len(control) == 1 and control[0] in nodes:
        first = (nodes[control[0]].get("spark_fabric_addresses") or [None])[0]
        try:
            first_ip = ipaddress.ip_interface(str(first)).ip if first else None
        except ValueError:
            first_ip = None
        if first_ip is not None and api != first_ip:
            problems.append("kubernetes_api_address %s is not the control plane's first fabric address (%s on %s)"
                            % (api, first_ip, control[0]))
    port = settings.get("kubernetes_api_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append("kubernetes_api_port: %r is not a TCP port" % (port,))

    for index, entry in enumerate(settings.get("metallb_address_pool") or []):
        label = "metallb_address_pool[%d]" % index
        bounds = _pool_range(entry, label, problems)
        if bounds is None:
            continue
        lo, hi = bounds
        if lan is not None and (lo not in lan or hi not in lan):
            problems.append("%s '%s' is not inside spark_lan_subnet %s" % (label, entry, lan))
        for ip, owner in sorted(seen.items()):
            if int(lo) <= int(ipaddress.ip_address(ip)) <= int(hi):
                problems.append("%s '%s' contains %s, already used by %s" % (label, entry, ip, owner))
    return problems, warnings
