# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of dgx_spark.cluster.fabric_ip: state in, actions out.

Parses ``ip -j addr show`` / ``ip -j -d link show`` / ``ip -j route show``, validates the requested ports,
chooses one interface per port (first candidate with carrier), plans the runtime changes (link, addresses,
connected route) and the persisted file (netplan YAML or NetworkManager keyfile), renders diffs, and plans and
judges the jumbo-frame ``ping`` to each port's peer.

No Ansible imports and no I/O: fabric_io.py reads the host and carries out the actions, fabric_run.py orders the
steps of a run, and plugins/modules/fabric_ip.py is the glue.
Every ``argv`` in an action is an ``ip`` argument list without the binary; a peer check's ``argv`` is a ``ping``
argument list without the binary.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import posixpath
import re
import uuid

from ansible_collections.dgx_spark.cluster.plugins.module_utils.limits import (
    interface_name_problem, mtu_problem,
)

NETPLAN_FILE = "/etc/netplan/40-dgx-spark-fabric.yaml"
NM_DIR = "/etc/NetworkManager/system-connections"
NM_PREFIX = "dgx-spark-fabric-"
NM_SUFFIX = ".nmconnection"
FILE_MODE = 0o600
HEADER = "# Managed by dgx_spark.cluster.fabric_ip (Ansible). Local changes are overwritten."
_UUID_NAMESPACE = uuid.UUID("6f0e2b5c-4a8d-5d6e-9c3b-8f1a2d7e4b90")  # fixed: keyfile UUIDs stay stable per interface

# Interface names follow limits.interface_name_problem (the rule preflight applies too).  A name that YAML would
# read as something other than a string (a number, a boolean, null) is quoted in the netplan file.
_YAML_SPECIAL = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


class FabricError(Exception):
    """Bad input or an impossible request; the message is meant for the user as is."""


# --------------------------------------------------------------------------------------------------------------
# parsers
# --------------------------------------------------------------------------------------------------------------

def parse_ip_json(text, what="ip -j output"):
    """Parse the JSON array printed by ``ip -j ...``; empty output is an empty list."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FabricError("cannot parse %s as JSON: %s" % (what, exc))
    if not isinstance(data, list):
        raise FabricError("%s is not a JSON list" % what)
    return data


def carrier_from_flags(flags):
    """True/False from the link flags, or None when the link is administratively down (carrier unreadable)."""
    flags = flags or []
    if "UP" not in flags:
        return None
    return "LOWER_UP" in flags


def parse_interfaces(addr_json, link_json=None):
    """Build ``{ifname: iface}`` from ``ip -j addr show`` (and optionally ``ip -j -d link show``) output.

    iface: name, ifindex, mtu, min_mtu, max_mtu, flags, admin_up, carrier, operstate, kind and
    ``addrs`` (list of dicts family/local/prefixlen/noprefixroute, in kernel order).
    """
    interfaces = {}
    for entry in parse_ip_json(addr_json, "ip -j addr show") if not isinstance(addr_json, list) else addr_json:
        name = entry.get("ifname")
        if not name:
            continue
        flags = list(entry.get("flags") or [])
        addrs = []
        for info in entry.get("addr_info") or []:
            if info.get("family") not in ("inet", "inet6") or "local" not in info:
                continue
            addrs.append({
                "family": info["family"],
                "local": info["local"],
                "prefixlen": int(info.get("prefixlen", 32 if info["family"] == "inet" else 128)),
                "noprefixroute": bool(info.get("noprefixroute", False)),
            })
        interfaces[name] = {
            "name": name,
            "ifindex": entry.get("ifindex"),
            "mtu": entry.get("mtu"),
            "min_mtu": None,
            "max_mtu": None,
            "flags": flags,
            "admin_up": "UP" in flags,
            "carrier": carrier_from_flags(flags),
            "operstate": entry.get("operstate", "UNKNOWN"),
            "kind": None,
            "addrs": addrs,
        }
    links = link_json if isinstance(link_json, list) else parse_ip_json(link_json, "ip -j link show")
    for entry in links:
        name = entry.get("ifname")
        if not name:
            continue
        iface = interfaces.setdefault(name, {
            "name": name, "ifindex": entry.get("ifindex"), "addrs": [], "kind": None,
            "min_mtu": None, "max_mtu": None,
        })
        flags = list(entry.get("flags") or [])
        iface.update({
            "mtu": entry.get("mtu"),
            "flags": flags,
            "admin_up": "UP" in flags,
            "carrier": carrier_from_flags(flags),
            "operstate": entry.get("operstate", "UNKNOWN"),
        })
        # min_mtu/max_mtu only with -d; 0 means "no limit reported" (loopback).
        if entry.get("max_mtu"):
            iface["max_mtu"] = int(entry["max_mtu"])
        if entry.get("min_mtu"):
            iface["min_mtu"] = int(entry["min_mtu"])
        kind = (entry.get("linkinfo") or {}).get("info_kind")
        if kind:
            iface["kind"] = kind
    return interfaces


def parse_routes(route_json):
    """``ip -j route show`` -> list of dicts dst/dev/protocol/scope/prefsrc/flags (main table)."""
    routes = []
    for entry in route_json if isinstance(route_json, list) else parse_ip_json(route_json, "ip -j route show"):
        routes.append({
            "dst": entry.get("dst"),
            "dev": entry.get("dev"),
            "protocol": entry.get("protocol"),
            "scope": entry.get("scope"),
            "prefsrc": entry.get("prefsrc"),
            "flags": list(entry.get("flags") or []),
        })
    return routes


def parse_sysfs_speed(text):
    """/sys/class/net/<if>/speed -> Mb/s, or None when unknown (-1, unsigned -1, empty, garbage)."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    if value <= 0 or value >= 4294967295:
        return None
    return value


_ETHTOOL_SPEED = re.compile(r"^\s*Speed:\s*(\S+)", re.MULTILINE)


def parse_ethtool_speed(text):
    """``ethtool <if>`` -> Mb/s from the first 'Speed: 200000Mb/s' line, None for 'Unknown!' or no line."""
    match = _ETHTOOL_SPEED.search(text or "")
    if not match:
        return None
    num = re.match(r"^(\d+)Mb/s$", match.group(1))
    return int(num.group(1)) if num else None


def mgmt_from_ssh_connection(value):
    """Server address (third field) of SSH_CONNECTION 'client_ip client_port server_ip server_port', or None."""
    fields = (value or "").split()
    if len(fields) != 4:
        return None
    addr = fields[2].split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


def find_address_holders(interfaces, ip):
    """Names of the interfaces holding ``ip`` (any prefix), sorted."""
    return sorted(name for name, iface in interfaces.items() if any(a["local"] == ip for a in iface["addrs"]))


# --------------------------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------------------------

def _yaml_key(name):
    return '"%s"' % name if name.lower() in _YAML_SPECIAL or not name[:1].isalpha() else name


def parse_cidr(text):
    """Validate one fabric address 'A.B.C.D/N'; return (ip, prefixlen, network) or raise FabricError."""
    if not isinstance(text, str) or "/" not in text:
        raise FabricError("address %r must be an IPv4 address with a prefix length, e.g. 10.10.10.1/24" % (text,))
    try:
        iface = ipaddress.ip_interface(text.strip())
    except ValueError as exc:
        raise FabricError("address %r is not a valid CIDR: %s" % (text, exc))
    if iface.version != 4:
        raise FabricError("address %r: only IPv4 fabric addresses are supported (RoCE v2 IPv4 GIDs)" % text)
    ip, net = iface.ip, iface.network
    prefix = net.prefixlen
    if prefix == 0 or prefix == 32:
        raise FabricError("address %r: prefix /%d leaves no connected network for the peer; use /1../31" % (text, prefix))
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise FabricError("address %r is a loopback/multicast/unspecified/reserved address" % text)
    if prefix <= 30 and ip == net.network_address:
        raise FabricError("address %r is the network address of %s; use a host address such as %s/%d"
                          % (text, net, net.network_address + 1, prefix))
    if prefix <= 30 and ip == net.broadcast_address:
        raise FabricError("address %r is the broadcast address of %s; use a host address such as %s/%d"
                          % (text, net, net.broadcast_address - 1, prefix))
    return str(ip), prefix, str(net)


def validate_mtu(mtu):
    problem = mtu_problem(mtu)
    if problem:
        raise FabricError("mtu %s (IPv6 minimum .. largest jumbo frame common to switches)" % problem)
    return mtu


def normalize_ports(ports, state="present"):
    """Validate ``ports``; return a list of dicts address/ip/prefixlen/network/candidates. Raise on any error."""
    errors = []
    result = []
    if not ports:
        raise FabricError("ports must list at least one {candidates, address}")
    seen_ip = {}
    for index, port in enumerate(ports):
        label = "ports[%d]" % index
        if not isinstance(port, dict):
            errors.append("%s must be a dict with candidates and address" % label)
            continue
        candidates = port.get("candidates") or []
        if isinstance(candidates, str):
            candidates = [candidates]
        if not candidates:
            errors.append("%s: candidates must name at least one interface" % label)
        bad = [problem for problem in (interface_name_problem(c) for c in candidates) if problem]
        if bad:
            errors.append("%s: invalid interface name(s): %s" % (label, "; ".join(bad)))
        dups = sorted(set(c for c in candidates if isinstance(c, str) and candidates.count(c) > 1))
        if dups:
            errors.append("%s: candidate(s) listed twice: %s" % (label, ", ".join(dups)))
        try:
            ip, prefix, network = parse_cidr(port.get("address"))
        except FabricError as exc:
            errors.append("%s: %s" % (label, exc))
            continue
        if ip in seen_ip:
            errors.append("%s: address %s is already given to ports[%d]; each port needs its own address"
                          % (label, ip, seen_ip[ip]))
        seen_ip[ip] = index
        try:
            peer = parse_peer(port.get("peer"), ip, prefix, network)
        except FabricError as exc:
            errors.append("%s: %s" % (label, exc))
            peer = None
        result.append({
            "index": index,
            "address": "%s/%d" % (ip, prefix),
            "ip": ip,
            "prefixlen": prefix,
            "network": network,
            "candidates": list(candidates),
            "peer": peer,
        })
    for port in result:
        if port["peer"] in seen_ip and seen_ip[port["peer"]] != port["index"]:
            errors.append("ports[%d]: peer %s is the address of ports[%d] on this node; give the other node's address "
                          "on this half" % (port["index"], port["peer"], seen_ip[port["peer"]]))
    if errors:
        raise FabricError("; ".join(errors))
    return result


def parse_peer(text, ip, prefix, network):
    """Validate a port's ``peer`` (the other node's IPv4 address on that half, no prefix); None when not given."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise FabricError("peer %r must be an IPv4 address such as 10.10.10.2" % (text,))
    if "/" in text:
        raise FabricError("peer %r must be an address without a prefix length, e.g. %s"
                          % (text, text.split("/", 1)[0].strip()))
    try:
        peer = ipaddress.ip_address(text.strip())
    except ValueError:
        raise FabricError("peer %r is not a valid IPv4 address" % (text,))
    if peer.version != 4:
        raise FabricError("peer %r: only IPv4 peers are supported (the fabric addresses are IPv4)" % (text,))
    net = ipaddress.ip_network(network)
    if peer not in net:
        raise FabricError("peer %s is outside %s, the network of %s/%d; the peer's address on this half must be in "
                          "the same network" % (peer, net, ip, prefix))
    if str(peer) == ip:
        raise FabricError("peer %s is this port's own address; give the other node's address on this half" % peer)
    if prefix <= 30 and peer == net.network_address:
        raise FabricError("peer %s is the network address of %s" % (peer, net))
    if prefix <= 30 and peer == net.broadcast_address:
        raise FabricError("peer %s is the broadcast address of %s" % (peer, net))
    return str(peer)


def validate_peer_retries(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FabricError("peer_retries %r must be 0 or more" % (value,))
    return value


def check_mgmt_conflicts(ports, mgmt_ip):
    """Refuse a port address equal to the management address, or a fabric network containing it."""
    if not mgmt_ip:
        return
    try:
        mgmt = ipaddress.ip_address(mgmt_ip)
    except ValueError:
        raise FabricError("mgmt_address %r is not an IP address" % (mgmt_ip,))
    errors = []
    for port in ports:
        if port["ip"] == str(mgmt):
            errors.append("ports[%d]: %s is the management address this connection uses; run fabric_ip over "
                          "another (LAN) address" % (port["index"], port["ip"]))
        elif mgmt.version == 4 and mgmt in ipaddress.ip_network(port["network"]):
            errors.append("ports[%d]: fabric network %s contains the management address %s; its connected route "
                          "would capture management traffic" % (port["index"], port["network"], mgmt))
    if errors:
        raise FabricError("; ".join(errors))


def shared_network_warnings(ports):
    warnings = []
    by_net = {}
    for port in ports:
        by_net.setdefault(port["network"], []).append(port)
    for network, group in sorted(by_net.items()):
        if len(group) > 1:
            warnings.append("ports %s share network %s: Linux routes it through one interface only; NVIDIA's "
                            "two-Spark guide puts each half on its own subnet"
                            % (", ".join(p["address"] for p in group), network))
    return warnings


# --------------------------------------------------------------------------------------------------------------
# choosing the interface
# --------------------------------------------------------------------------------------------------------------

def _yes_no(value):
    return "unknown (link down)" if value is None else ("yes" if value else "no")


def describe_candidate(entry):
    if not entry["exists"]:
        return "%s (does not exist)" % entry["name"]
    text = "%s (operstate %s, carrier %s" % (entry["name"], entry["operstate"], _yes_no(entry["carrier"]))
    if entry.get("skipped"):
        text += ", skipped: %s" % entry["skipped"]
    return text + ")"


def _consider(port, interfaces, mgmt_ifnames):
    considered = []
    for name in port["candidates"]:
        iface = interfaces.get(name)
        if iface is None:
            considered.append({"name": name, "exists": False, "operstate": None, "carrier": None,
                               "admin_up": None, "mtu": None, "skipped": None})
            continue
        entry = {"name": name, "exists": True, "operstate": iface.get("operstate"),
                 "carrier": iface.get("carrier"), "admin_up": iface.get("admin_up"),
                 "mtu": iface.get("mtu"), "skipped": None}
        if name in (mgmt_ifnames or ()):
            entry["skipped"] = "carries the management address"
        considered.append(entry)
    return considered


def absent_selections(ports, interfaces, mgmt_ifnames=()):
    """For state=absent: no choice is made; every existing candidate is cleaned."""
    return [{"port": port, "name": None, "candidates": _consider(port, interfaces, mgmt_ifnames),
             "reason": "state=absent", "probe": []} for port in ports]


def choose_interfaces(ports, interfaces, mgmt_ifnames=(), require_carrier=True, mode="final"):
    """Choose one interface per port: the first candidate with carrier.

    The interface holding the management address is skipped.  A candidate that is administratively down has no
    readable carrier; ``mode`` says what to do with it:

    ``probe``   (real run, first pass) list it in ``probe`` when it comes before the first candidate with carrier;
                the caller brings those up, waits for carrier and calls again with ``final``.
    ``assume``  (check mode, and the prediction made before anything changes) assume it gets carrier once
                brought up: it is chosen, and listed in ``probe`` (the run would bring it up).
    ``final``   treat it as having no carrier.

    Returns (selections, probe).  Raises FabricError naming every port that cannot be served.
    """
    selections = []
    probe = []
    errors = []
    for port in ports:
        considered = _consider(port, interfaces, mgmt_ifnames)
        usable = [c for c in considered if c["exists"] and not c["skipped"]]
        port_probe = []
        chosen = None
        reason = "first candidate with carrier"
        for cand in usable:
            if cand["carrier"] is True:
                chosen = cand["name"]
                break
            if cand["carrier"] is None and mode in ("probe", "assume"):
                port_probe.append(cand["name"])
                if mode == "assume":
                    chosen = cand["name"]
                    reason = "administratively down: assumed to get carrier once brought up"
                    break
        if mode == "probe" and port_probe:
            reason = "provisional: %s must be brought up to read carrier" % ", ".join(port_probe)
        elif chosen is None:
            if not usable:
                if not any(c["exists"] for c in considered):
                    errors.append("%s: none of the candidates exist: %s"
                                  % (port["address"], ", ".join(port["candidates"])))
                else:
                    errors.append("%s: every existing candidate is skipped: %s"
                                  % (port["address"], "; ".join(describe_candidate(c) for c in considered)))
            elif require_carrier:
                errors.append("%s: no candidate has carrier (is the QSFP cable in this port, and the peer up?): %s"
                              % (port["address"], "; ".join(describe_candidate(c) for c in considered)))
            else:
                chosen = usable[0]["name"]
                reason = "no candidate has carrier; first existing candidate (require_carrier=false)"
        for name in port_probe:
            if name not in probe:
                probe.append(name)
        selections.append({"port": port, "name": chosen, "candidates": considered, "reason": reason,
                           "probe": port_probe})
    if errors:
        raise FabricError("; ".join(errors))
    if mode == "probe" and probe:
        return selections, probe
    owners = {}
    for sel in selections:
        if sel["name"]:
            owners.setdefault(sel["name"], []).append(sel["port"]["address"])
    clash = ["%s would serve %s" % (name, " and ".join(addrs)) for name, addrs in sorted(owners.items())
             if len(addrs) > 1]
    if clash:
        raise FabricError("ports overlap: %s; give each port its own candidates (one address per interface)"
                          % "; ".join(clash))
    return selections, probe


def probe_settled(ports, interfaces, probed, mgmt_ifnames=()):
    """True when waiting longer cannot change the choice: for every port, no probed candidate that comes
    before the first candidate with carrier is still without carrier."""
    for port in ports:
        for name in port["candidates"]:
            iface = interfaces.get(name)
            if iface is None or name in (mgmt_ifnames or ()):
                continue
            if iface.get("carrier") is True:
                break
            if name in probed:
                return False
    return True


def check_device_mtu(selections, interfaces, mtu):
    errors = []
    for sel in selections:
        iface = interfaces.get(sel["name"] or "")
        if not iface:
            continue
        if iface.get("max_mtu") and mtu > iface["max_mtu"]:
            errors.append("%s accepts at most MTU %d (requested %d)" % (iface["name"], iface["max_mtu"], mtu))
        if iface.get("min_mtu") and mtu < iface["min_mtu"]:
            errors.append("%s needs at least MTU %d (requested %d)" % (iface["name"], iface["min_mtu"], mtu))
    if errors:
        raise FabricError("; ".join(errors))


# --------------------------------------------------------------------------------------------------------------
# runtime plan
# --------------------------------------------------------------------------------------------------------------

def make_action(kind, text, argv=None, ifname=None, **extra):
    action = {"kind": kind, "text": text, "argv": argv, "ifname": ifname}
    action.update(extra)
    return action


def probe_actions(names):
    return [make_action("probe", "bring up %s to read its carrier (it is administratively down)" % name,
                        ["link", "set", "dev", name, "up"], name) for name in names]


def plan_runtime(selections, interfaces, routes, mtu, state="present", mgmt_ifnames=(), probed=()):
    """Runtime actions, in execution order: link (MTU/up), address removals, additions, connected routes.

    Returns (actions, warnings).  ``probed``: interfaces that earlier actions bring up (check-mode prediction).
    """
    links, dels, adds, route_actions, warnings = [], [], [], [], []
    if state == "absent":
        for sel in selections:
            port = sel["port"]
            for cand in sel["candidates"]:
                iface = interfaces.get(cand["name"])
                if not iface:
                    continue
                for addr in iface["addrs"]:
                    if addr["family"] != "inet" or addr["local"] != port["ip"]:
                        continue
                    cidr = "%s/%d" % (addr["local"], addr["prefixlen"])
                    if iface["name"] in (mgmt_ifnames or ()):
                        warnings.append("left %s on %s: it carries the management address" % (cidr, iface["name"]))
                        continue
                    dels.append(make_action("addr_del", "remove %s from %s" % (cidr, iface["name"]),
                                            ["addr", "del", cidr, "dev", iface["name"]], iface["name"]))
        return _dedupe(dels), warnings

    for sel in selections:
        port = sel["port"]
        name = sel["name"]
        iface = interfaces.get(name)
        if iface is None:
            raise FabricError("%s (chosen for %s) has disappeared" % (name, port["address"]))
        up = iface.get("admin_up") or name in probed
        if iface.get("mtu") != mtu or not up:
            what = []
            if iface.get("mtu") != mtu:
                what.append("set MTU %d (was %s)" % (mtu, iface.get("mtu")))
            if not up:
                what.append("bring up")
            links.append(make_action("link", "%s on %s" % (" and ".join(what), name),
                                     ["link", "set", "dev", name, "mtu", str(mtu), "up"], name))
        present = False
        kernel_adds_route = False
        for addr in iface["addrs"]:
            if addr["family"] != "inet" or addr["local"] != port["ip"]:
                continue
            if addr["prefixlen"] == port["prefixlen"]:
                present = True
                # an admin-down interface has no connected routes; the kernel adds them when it comes up
                kernel_adds_route = not iface.get("admin_up") and not addr["noprefixroute"]
            else:
                cidr = "%s/%d" % (addr["local"], addr["prefixlen"])
                dels.append(make_action("addr_del", "remove %s from %s (wrong prefix; want %s)"
                                        % (cidr, name, port["address"]), ["addr", "del", cidr, "dev", name], name))
        # duplicates: the same IP, any prefix, on any other interface
        for other_name in sorted(interfaces):
            if other_name == name:
                continue
            other = interfaces[other_name]
            for addr in other["addrs"]:
                if addr["family"] != "inet" or addr["local"] != port["ip"]:
                    continue
                cidr = "%s/%d" % (addr["local"], addr["prefixlen"])
                if other_name in (mgmt_ifnames or ()):
                    warnings.append("duplicate %s left on %s: it carries the management address; remove it by hand"
                                    % (cidr, other_name))
                    continue
                dels.append(make_action("addr_del", "remove duplicate %s from %s (%s belongs on %s)"
                                        % (cidr, other_name, port["ip"], name),
                                        ["addr", "del", cidr, "dev", other_name], other_name))
        if not present:
            adds.append(make_action("addr_add", "add %s to %s" % (port["address"], name),
                                    ["addr", "replace", port["address"], "dev", name], name))
        elif not kernel_adds_route:
            has_route = any(r["dst"] == port["network"] and r["dev"] == name for r in routes)
            if not has_route:
                route_actions.append(make_action(
                    "route", "add connected route %s dev %s src %s" % (port["network"], name, port["ip"]),
                    ["route", "replace", port["network"], "dev", name, "proto", "kernel", "scope", "link",
                     "src", port["ip"]], name))
    return _dedupe(links + dels + adds + route_actions), warnings


def _dedupe(actions):
    seen = set()
    result = []
    for action in actions:
        key = tuple(action["argv"] or ()) or action["text"]
        if key in seen:
            continue
        seen.add(key)
        result.append(action)
    return result


def simulate(interfaces, actions):
    """Interfaces after the runtime actions (for diffs): a deep copy with links/addresses changed."""
    after = {}
    for name, iface in interfaces.items():
        copy = dict(iface)
        copy["addrs"] = [dict(a) for a in iface["addrs"]]
        copy["flags"] = list(iface.get("flags") or [])
        after[name] = copy
    for action in actions:
        iface = after.get(action.get("ifname") or "")
        if iface is None or not action.get("argv"):
            continue
        argv = action["argv"]
        if action["kind"] in ("link", "probe"):
            iface["admin_up"] = True
            if "mtu" in argv:
                iface["mtu"] = int(argv[argv.index("mtu") + 1])
        elif action["kind"] == "addr_del":
            ip, prefix = argv[2].split("/")
            iface["addrs"] = [a for a in iface["addrs"]
                              if not (a["local"] == ip and a["prefixlen"] == int(prefix))]
        elif action["kind"] == "addr_add":
            ip, prefix = argv[2].split("/")
            iface["addrs"].append({"family": "inet", "local": ip, "prefixlen": int(prefix), "noprefixroute": False})
    return after


# --------------------------------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------------------------------

def desired_entries(selections):
    """(ifname, address) for every chosen interface, sorted by interface name."""
    return sorted((sel["name"], sel["port"]["address"]) for sel in selections if sel["name"])


def render_netplan(entries, mtu):
    """The netplan file owned by the module (deterministic: sorted by interface name)."""
    lines = [HEADER, "network:", "  version: 2", "  renderer: networkd", "  ethernets:"]
    for name, address in sorted(entries):
        lines.extend([
            "    %s:" % _yaml_key(name),
            "      addresses:",
            "        - %s" % address,
            "      mtu: %d" % mtu,
            "      dhcp4: false",
            "      dhcp6: false",
            "      link-local: []",
        ])
    return "\n".join(lines) + "\n"


def nm_connection_id(ifname):
    return NM_PREFIX + ifname


def nm_keyfile_path(ifname, nm_dir=NM_DIR):
    return "%s/%s%s" % (nm_dir.rstrip("/"), nm_connection_id(ifname), NM_SUFFIX)


def render_nm_keyfile(ifname, address, mtu):
    """A NetworkManager keyfile for one fabric interface (static IPv4, MTU, no IPv6)."""
    conn_id = nm_connection_id(ifname)
    return "\n".join([
        HEADER,
        "[connection]",
        "id=%s" % conn_id,
        "uuid=%s" % uuid.uuid5(_UUID_NAMESPACE, conn_id),
        "type=ethernet",
        "interface-name=%s" % ifname,
        "autoconnect=true",
        "autoconnect-priority=100",
        "",
        "[ethernet]",
        "mtu=%d" % mtu,
        "",
        "[ipv4]",
        "method=manual",
        "address1=%s" % address,
        "",
        "[ipv6]",
        "method=disabled",
        "",
    ])


def is_nm_owned(filename):
    return filename.startswith(NM_PREFIX) and filename.endswith(NM_SUFFIX)


def desired_files(persist, state, entries, mtu, netplan_file=NETPLAN_FILE, nm_dir=NM_DIR):
    """``{path: content}`` the module wants to exist (empty for absent or persist=none)."""
    if persist == "none" or state == "absent":
        return {}
    if persist == "netplan":
        return {netplan_file: render_netplan(entries, mtu)}
    return dict((nm_keyfile_path(name, nm_dir), render_nm_keyfile(name, address, mtu)) for name, address in entries)


def plan_files(desired, current):
    """File actions from ``desired`` ({path: content}) and ``current`` ({path: (content or None, mode or None)}).

    Every path in ``current`` that is not desired is one the module owns and must remove.
    """
    actions = []
    for path in sorted(set(desired) | set(current)):
        before, mode = current.get(path, (None, None))
        if path in desired:
            after = desired[path]
            if before != after:
                verb = "create" if before is None else "rewrite"
                actions.append(make_action("file_write", "%s %s (mode 0600)" % (verb, path),
                                           path=path, before=before, after=after))
            elif mode is not None and (mode & 0o7777) != FILE_MODE:
                actions.append(make_action("file_mode", "set mode 0600 on %s (was %04o)" % (path, mode & 0o7777),
                                           path=path, before=before, after=after))
        elif before is not None:
            actions.append(make_action("file_remove", "remove %s" % path, path=path, before=before, after=None))
    return actions


def apply_actions(persist, file_actions, desired):
    """The command(s) that make the written files effective, as actions without argv (the module runs them)."""
    content_changed = [a for a in file_actions if a["kind"] in ("file_write", "file_remove")]
    if not content_changed or persist == "none":
        return []
    if persist == "netplan":
        return [make_action("apply", "netplan apply", command="netplan_apply")]
    result = [make_action("apply", "nmcli connection reload", command="nm_reload")]
    for action in content_changed:
        if action["kind"] == "file_write" and action["path"] in desired:
            conn_id = action["path"].rsplit("/", 1)[-1][:-len(NM_SUFFIX)]
            result.append(make_action("apply", "nmcli connection up %s" % conn_id, command="nm_up", conn_id=conn_id))
    return result


# --------------------------------------------------------------------------------------------------------------
# peer checks (jumbo frames to the other node, don't fragment)
# --------------------------------------------------------------------------------------------------------------

PING_HEADERS = 28  # IPv4 header (20) + ICMP echo header (8): payload mtu-28 makes an IP packet of exactly mtu bytes
_PING_TIME = re.compile(r",\s*time\s+\d+(\.\d+)?\s*ms\s*$")
_PING_DENIED = ("operation not permitted", "permission denied", "cap_net_raw")


def ping_argv(ifname, peer, mtu):
    """``ping`` arguments (without the binary): one echo of exactly ``mtu`` bytes, don't fragment, out of ``ifname``."""
    return ["-c", "1", "-W", "2", "-M", "do", "-s", str(mtu - PING_HEADERS), "-I", ifname, peer]


def _peer_check(sel, mtu, skipped=None):
    return {"name": sel["name"], "peer": sel["port"]["peer"], "mtu": mtu, "ok": None, "attempts": 0,
            "output_tail": None, "summary": None, "skipped": skipped,
            "argv": ping_argv(sel["name"], sel["port"]["peer"], mtu), "todo": skipped is None}


def _not_ready_in_check_mode(sel, iface, mtu):
    """Why the check cannot run in check mode yet (the run would change the interface first), or None."""
    name, port = sel["name"], sel["port"]
    why = []
    if not any(a["family"] == "inet" and a["local"] == port["ip"] and a["prefixlen"] == port["prefixlen"]
               for a in iface.get("addrs") or []):
        why.append("%s is not on %s yet" % (port["address"], name))
    if iface.get("mtu") != mtu:
        why.append("%s has MTU %s, not %d yet" % (name, iface.get("mtu"), mtu))
    if not iface.get("admin_up"):
        why.append("%s is administratively down" % name)
    if not why:
        return None
    return "check mode: %s; the real run checks after configuring it" % " and ".join(why)


def plan_peer_checks(selections, interfaces, mtu, verify=True, check_mode=False, require_carrier=True):
    """One check per chosen port with a ``peer``: dicts with ``argv`` (ping arguments), ``todo`` (ping it) and
    ``skipped`` (the reason it is not pinged, or None).

    ``interfaces``: the state after the run (real run) or as found (check mode, where only a port whose address
    and MTU are already in place is pinged).  A peer address that this node holds itself fails the check without
    a ping (the echo would never leave the node).
    """
    checks = []
    for sel in selections:
        if not sel["name"] or not sel["port"].get("peer"):
            continue
        iface = interfaces.get(sel["name"]) or {"addrs": [], "mtu": None, "admin_up": False}
        if not verify:
            checks.append(_peer_check(sel, mtu, "verify_peers=false"))
            continue
        if iface.get("carrier") is False and not require_carrier:
            checks.append(_peer_check(sel, mtu, "%s has no carrier (require_carrier=false)" % sel["name"]))
            continue
        if check_mode:
            why = _not_ready_in_check_mode(sel, iface, mtu)
            if why:
                checks.append(_peer_check(sel, mtu, why))
                continue
        check = _peer_check(sel, mtu)
        holders = find_address_holders(interfaces, check["peer"])
        if holders:
            check.update(ok=False, todo=False, summary="%s is an address of this node (on %s), not the peer's"
                         % (check["peer"], ", ".join(holders)))
        checks.append(check)
    return checks


def _lines(text):
    return [line.rstrip() for line in (text or "").splitlines() if line.strip()]


def ping_summary(rc, stdout, stderr):
    """The line that says why a ping failed: the last line of its output (the statistics line, without the
    ``time Nms`` part), followed by the last line of its error output in brackets when there is one."""
    out, err = _lines(stdout), _lines(stderr)
    last = _PING_TIME.sub("", out[-1]) if out else ""
    if err:
        last = "%s (%s)" % (last, err[-1]) if last else err[-1]
    if not last:
        last = "ping exited with rc %s and printed nothing" % rc
    if rc == 124:
        last += " (timed out)"
    return last


def ping_denied(stderr):
    text = (stderr or "").lower()
    return any(word in text for word in _PING_DENIED)


def record_ping(check, rc, stdout, stderr, tail_lines=4):
    """Record one ping in ``check``: ok, attempts, output_tail, summary; ``todo`` stays true while a retry can help
    (not after a success, nor when ping may not open its socket)."""
    check["attempts"] += 1
    check["ok"] = rc == 0
    check["output_tail"] = "\n".join((_lines(stdout) + _lines(stderr))[-tail_lines:])
    check["summary"] = None if rc == 0 else ping_summary(rc, stdout, stderr)
    check["todo"] = rc != 0
    if rc != 0 and ping_denied(stderr):
        check["summary"] += "; ping needs root or CAP_NET_RAW (run the module with become)"
        check["todo"] = False
    return check


def peer_report(checks):
    """The ``peer_checks`` return value (the checks without their internal keys)."""
    keys = ("name", "peer", "mtu", "ok", "attempts", "output_tail", "summary", "skipped")
    return [dict((k, c[k]) for k in keys) for c in checks]


def peer_failure_message(checks, mtu):
    """One message naming every half whose check failed, or None when none failed."""
    failed = [c for c in checks if c["ok"] is False]
    if not failed:
        return None
    return "no %d-byte path to the peer: %s; check the cable, and the peer's address and MTU on %s" % (
        mtu, "; ".join("%s -> %s (MTU %d): %s" % (c["name"], c["peer"], c["mtu"], c["summary"]) for c in failed),
        "that half" if len(failed) == 1 else "each of those halves")


# --------------------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------------------

def _addr_lines(interfaces, names):
    lines = []
    for name in names:
        iface = interfaces.get(name)
        if iface is None:
            continue
        addrs = ["%s/%d" % (a["local"], a["prefixlen"]) for a in iface["addrs"] if a["family"] == "inet"]
        lines.append("%s: %s" % (name, ", ".join(addrs) if addrs else "(no IPv4 address)"))
    return "\n".join(lines) + ("\n" if lines else "")


def _link_lines(interfaces, names):
    lines = []
    for name in names:
        iface = interfaces.get(name)
        if iface is None:
            continue
        lines.append("%s: mtu %s, %s" % (name, iface.get("mtu"), "up" if iface.get("admin_up") else "down"))
    return "\n".join(lines) + ("\n" if lines else "")


def involved_interfaces(selections, actions):
    names = set()
    for sel in selections:
        if sel["name"]:
            names.add(sel["name"])
    for action in actions:
        if action.get("ifname"):
            names.add(action["ifname"])
    return sorted(names)


def build_diff(interfaces, selections, runtime_actions, file_actions, after=None):
    """Ansible diff list: addresses, MTU/link state, then one entry per file touched.

    ``after``: the interfaces as read after a real run; predicted from the actions when not given (check mode).
    """
    if after is None:
        after = simulate(interfaces, runtime_actions)
    names = involved_interfaces(selections, runtime_actions)
    link_names = sorted(set(sel["name"] for sel in selections if sel["name"]) |
                        set(a["ifname"] for a in runtime_actions if a["kind"] in ("link", "probe")))
    diff = [
        {"before_header": "IPv4 addresses (before)", "after_header": "IPv4 addresses (after)",
         "before": _addr_lines(interfaces, names), "after": _addr_lines(after, names)},
        {"before_header": "MTU and link (before)", "after_header": "MTU and link (after)",
         "before": _link_lines(interfaces, link_names), "after": _link_lines(after, link_names)},
    ]
    for action in file_actions:
        diff.append({"before_header": "%s (before)" % action["path"], "after_header": "%s (after)" % action["path"],
                     "before": action.get("before") or "", "after": action.get("after") or ""})
    return diff


def port_report(selections, interfaces, speeds=None):
    """The ``ports`` return value, read from ``interfaces`` (the state after the run, or now in check mode)."""
    speeds = speeds or {}
    report = []
    for sel in selections:
        name = sel["name"]
        iface = interfaces.get(name or "") or {}
        report.append({
            "name": name,
            "address": sel["port"]["address"],
            "mtu": iface.get("mtu"),
            "carrier": iface.get("carrier") if iface else None,
            "operstate": iface.get("operstate") if iface else None,
            "speed_mbps": speeds.get(name) if name else None,
            "reason": sel["reason"],
            "candidates": [dict((k, c[k]) for k in ("name", "exists", "operstate", "carrier", "mtu", "skipped"))
                           for c in sel["candidates"]],
        })
    return report


# --------------------------------------------------------------------------------------------------------------
# the run's remaining decisions (the order of the steps is fabric_run.py's, the I/O fabric_io.py's)
# --------------------------------------------------------------------------------------------------------------

PING_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]  # where ping (iputils) is looked up besides PATH


def persist_command(persist):
    """The command a persist method needs to apply its files: ``netplan``, ``nmcli`` or None (persist=none)."""
    return {"netplan": "netplan", "networkmanager": "nmcli"}.get(persist)


def missing_persist_command_message(persist):
    return ("persist=%s needs the %s command, which is not installed (searched PATH, /usr/sbin, /sbin); install it, "
            "choose another persist method, or use persist=none" % (persist, persist_command(persist)))


def needs_ping(verify_peers, state, ports):
    """True when the run will ping a peer (and so needs the ping command before it changes anything)."""
    return bool(verify_peers and state == "present" and any(port["peer"] for port in ports))


def missing_ping_message():
    return ("verify_peers needs the ping command (iputils-ping), which is not installed (searched PATH, %s); "
            "install it, or set verify_peers=false" % ", ".join(PING_DIRS))


def resolve_mgmt(option, ssh_connection, interfaces):
    """The ``mgmt_address`` return value (address, source, interfaces holding it) and the warnings about it.

    ``option``: the mgmt_address option; ``ssh_connection``: the value of SSH_CONNECTION (or None).
    """
    address, source = option, "option"
    if not address:
        address, source = mgmt_from_ssh_connection(ssh_connection), "SSH_CONNECTION"
    warnings = []
    if not address:
        address, source = None, None
        warnings.append("management address unknown (no mgmt_address, no SSH_CONNECTION): no interface is "
                        "protected and the apply step is only checked through mgmt_check_host")
    holders = find_address_holders(interfaces, address) if address else []
    if address and not holders:
        warnings.append("management address %s is not on any local interface; nothing to protect" % address)
    return {"address": address, "source": source, "interfaces": holders}, warnings


def mgmt_lost(interfaces, mgmt):
    """Why the management address counts as lost in ``interfaces`` (parsed ``ip -j addr show``), or None."""
    if set(find_address_holders(interfaces, mgmt["address"])) & set(mgmt["interfaces"]):
        return None
    return "management address %s is no longer on %s" % (mgmt["address"], ", ".join(mgmt["interfaces"]))


def no_carrier_warnings(selections, interfaces):
    """One warning per chosen interface without carrier (only possible with require_carrier=false)."""
    return ["%s has no carrier; %s configured anyway (require_carrier=false)" % (sel["name"], sel["port"]["address"])
            for sel in selections if sel["name"] and interfaces[sel["name"]].get("carrier") is False]


def has_address(interfaces, ifname, cidr):
    """True when ``ifname`` holds ``cidr`` ('A.B.C.D/N') in ``interfaces``."""
    ip, prefix = cidr.split("/")
    iface = interfaces.get(ifname, {"addrs": []})
    return "%s/%d" % (ip, int(prefix)) in ["%s/%d" % (a["local"], a["prefixlen"]) for a in iface["addrs"]]


def owned_paths(persist, persist_file, nm_dir, nm_listing):
    """The files the module owns for ``persist``: the netplan file, or the keyfiles named like its own among
    ``nm_listing`` (the file names in ``nm_dir``)."""
    if persist == "netplan":
        return [persist_file]
    if persist == "networkmanager":
        return [posixpath.join(nm_dir, name) for name in nm_listing if is_nm_owned(name)]
    return []


def apply_argv(tool, action):
    """The argument list (with the binary ``tool``) of one apply action from ``apply_actions``."""
    if action["command"] == "netplan_apply":
        return [tool, "apply"]
    if action["command"] == "nm_reload":
        return [tool, "connection", "reload"]
    return [tool, "--wait", "60", "connection", "up", "id", action["conn_id"]]


def rollback_actions(file_actions):
    """The file actions that undo ``file_actions``, in the same order: the previous content written back, a file
    that did not exist removed.  Mode changes are not undone."""
    restore = []
    for action in file_actions:
        if action["kind"] == "file_mode":
            continue
        if action["before"] is None:
            restore.append(make_action("file_remove", "removed new %s" % action["path"],
                                       path=action["path"], before=action["after"], after=None))
        else:
            restore.append(make_action("file_write", "restored previous %s" % action["path"],
                                       path=action["path"], before=action["after"], after=action["before"]))
    return restore


def restored_files(restore):
    """``{path: content}`` of the files ``restore`` writes (what the re-apply makes effective)."""
    return dict((a["path"], a["after"]) for a in restore if a["after"] is not None)


def rollback_message(why, file_actions, restore, reapply_error, reachable):
    """The failure message after a rollback.  ``reapply_error``: why applying the restored files failed, or None."""
    return ("%s after applying %s; rolled back (%s; applied again%s); management %s. Runtime changes already made "
            "on fabric interfaces were kept."
            % (why, ", ".join(a["path"] for a in file_actions),
               "; ".join(a["text"] for a in restore) or "nothing to restore",
               "" if reapply_error is None else ", but that failed: %s" % reapply_error,
               "reachable again" if reachable else "STILL NOT reachable"))


def not_converged_message(actions):
    return "runtime state does not converge; still to do: %s" % "; ".join(a["text"] for a in actions)


def persist_file_report(persist, persist_file, desired):
    """(``persist_file``, ``persist_files``) return values."""
    persist_files = sorted(desired)
    if persist == "netplan":
        return persist_file, persist_files
    return (persist_files[0] if persist_files else None), persist_files
