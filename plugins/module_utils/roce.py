# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the ``roce_check`` module: read the RDMA state, parse tool output, judge it.

No Ansible imports: unit tests drive everything here with real captured output and with fake
sysfs trees.  The only I/O is reading files below a caller-given sysfs root.

Sources, in the order they are trusted:

* sysfs ``<root>/class/infiniband/<dev>/ports/<n>/`` (state, phys_state, rate, link_layer, the GID
  table with its ``gid_attrs/types`` and ``gid_attrs/ndevs``) and ``<root>/class/net/<netdev>/``
  (mtu, speed, operstate).
* ``ibv_devinfo`` for the active RDMA MTU (sysfs does not expose it).
* ``rdma link show`` for the netdev and states when sysfs lacks them, and as a cross-check.
* ``ip -j addr show`` for the netdevs' IPv4 addresses.
* ``ib_write_bw`` output for the optional bandwidth test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import re

# /sys/class/net/<netdev>/speed is read the same way by fabric_ip: one parser for both.
from ansible_collections.dgx_spark.cluster.plugins.module_utils.fabric import parse_sysfs_speed

DEFAULT_MIN_SPEED_MBPS = 200000
DEFAULT_MIN_MTU = 9000
DEFAULT_MIN_ACTIVE_MTU = 4096
DEFAULT_MIN_BANDWIDTH_GBPS = 90.0

ROCE_V2 = "RoCE v2"
ROCE_V1 = "IB/RoCE v1"

# perftest: MB/sec means 2**20 bytes per second, Gb/sec means 10**9 bits per second.
_MBS_TO_GBPS = 1048576.0 * 8 / 1e9

_PHYS_STATE_NAMES = {
    "SLEEP": "Sleep",
    "POLLING": "Polling",
    "DISABLED": "Disabled",
    "PORT_CONFIGURATION_TRAINING": "PortConfigurationTraining",
    "LINK_UP": "LinkUp",
    "LINK_ERROR_RECOVERY": "LinkErrorRecovery",
    "PHY_TEST": "Phy Test",
}


class RoceError(Exception):
    """A problem that stops the check as a whole (reported as one precise message)."""


# ---------------------------------------------------------------------------------------------
# small parsers
# ---------------------------------------------------------------------------------------------

def parse_port_state(text):
    """sysfs ``state`` ("4: ACTIVE"), rdma ("ACTIVE") or ibv_devinfo ("PORT_ACTIVE (4)") -> "ACTIVE"."""
    if text is None:
        return None
    text = text.strip()
    if ":" in text:
        text = text.split(":", 1)[1].strip()
    text = text.split("(")[0].strip()
    if text.startswith("PORT_"):
        text = text[len("PORT_"):]
    return text or None


def parse_phys_state(text):
    """sysfs ``phys_state`` ("5: LinkUp") or rdma ("LINK_UP") -> "LinkUp"."""
    if text is None:
        return None
    text = text.strip()
    if ":" in text:
        text = text.split(":", 1)[1].strip()
    return _PHYS_STATE_NAMES.get(text, text) or None


def parse_rate_mbps(text):
    """sysfs port ``rate`` ("200 Gb/sec (4X HDR)", "2.5 Gb/sec (1X SDR)") -> Mb/s as int."""
    if not text:
        return None
    match = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)\s*Gb/sec", text)
    if not match:
        return None
    return int(round(float(match.group(1)) * 1000))


def gid_to_ipv4(gid):
    """Return the IPv4 address held by an IPv4-mapped GID (::ffff:a.b.c.d), else None.

    Accepts the sysfs form (eight groups of four hex digits) and compressed forms; anything
    else (link-local GIDs, redacted samples) gives None, never an exception.
    """
    if not gid:
        return None
    try:
        addr = ipaddress.IPv6Address(u"%s" % gid.strip())
    except ValueError:
        return None
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else None


def ipv4_to_gid(ipv4):
    """10.10.10.1 -> 0000:0000:0000:0000:0000:ffff:0a0a:0a01 (the sysfs spelling)."""
    packed = ipaddress.IPv4Address(u"%s" % ipv4).packed
    groups = ["0000"] * 5 + ["ffff", "%02x%02x" % (packed[0], packed[1]), "%02x%02x" % (packed[2], packed[3])]
    return ":".join(groups)


def _is_zero_gid(gid):
    return not gid or set(gid.strip()) <= set("0:")


def parse_networks(cidrs):
    """Validate ``fabric_subnets``; raise RoceError naming the bad entry."""
    networks = []
    for cidr in cidrs or []:
        try:
            networks.append(ipaddress.IPv4Network(u"%s" % cidr, strict=False))
        except ValueError as exc:
            raise RoceError("fabric_subnets: %r is not an IPv4 network (%s)" % (cidr, exc))
    return networks


# ---------------------------------------------------------------------------------------------
# tool output parsers
# ---------------------------------------------------------------------------------------------

def parse_ibv_devinfo(text):
    """Parse ``ibv_devinfo`` (optionally ``-v``) into {dev: {"fields": {...}, "ports": {n: {...}}}}.

    Port fields keep their raw text; ``state`` is normalised ("ACTIVE") and ``active_mtu`` /
    ``max_mtu`` become ints (bytes).
    """
    devices = {}
    dev = None
    port = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or ":" not in line:
            continue
        key, value = [part.strip() for part in line.split(":", 1)]
        if key == "hca_id":
            dev = devices.setdefault(value, {"fields": {}, "ports": {}})
            port = None
        elif dev is None:
            continue
        elif key == "port":
            try:
                port = dev["ports"].setdefault(int(value), {})
            except ValueError:
                port = None
        elif port is not None:
            if key in ("active_mtu", "max_mtu"):
                try:
                    port[key] = int(value.split()[0])
                except (ValueError, IndexError):
                    port[key] = None
            elif key == "state":
                port[key] = parse_port_state(value)
            else:
                port[key] = value
        else:
            dev["fields"][key] = value
    return devices


def parse_rdma_link(text):
    """Parse ``rdma link show`` into {(dev, port): {"state", "physical_state", "netdev", ...}}."""
    links = {}
    for raw in (text or "").splitlines():
        tokens = raw.split()
        if len(tokens) < 2 or tokens[0] != "link" or "/" not in tokens[1]:
            continue
        dev, _sep, port = tokens[1].rpartition("/")
        try:
            port = int(port)
        except ValueError:
            continue
        attrs = {}
        rest = tokens[2:]
        for i in range(0, len(rest) - 1, 2):
            attrs[rest[i]] = rest[i + 1]
        if "state" in attrs:
            attrs["state"] = parse_port_state(attrs["state"])
        if "physical_state" in attrs:
            attrs["physical_state"] = parse_phys_state(attrs["physical_state"])
        links[(dev, port)] = attrs
    return links


def parse_ip_addr_json(text):
    """Parse ``ip -j addr show`` into {ifname: {"mtu": int, "ipv4": ["a.b.c.d/len", ...]}}."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise RoceError("could not parse 'ip -j addr show' output as JSON: %s" % exc)
    result = {}
    for entry in data if isinstance(data, list) else []:
        name = entry.get("ifname") if isinstance(entry, dict) else None
        if not name:
            continue
        item = result.setdefault(name, {"mtu": entry.get("mtu"), "ipv4": []})
        for addr in entry.get("addr_info") or []:
            if addr.get("family") == "inet" and addr.get("local"):
                item["ipv4"].append("%s/%s" % (addr["local"], addr.get("prefixlen", 32)))
    return result


_BW_HEADER = re.compile(r"#bytes\s+#iterations\s+BW peak\[(Gb|MB)/sec\]\s+BW average\[(Gb|MB)/sec\]")
_BW_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)")
_BW_FIELDS = (
    ("device", re.compile(r"Device\s*:\s*(\S+)"), str),
    ("gid_index", re.compile(r"GID index\s*:\s*(\d+)"), int),
    ("mtu", re.compile(r"Mtu\s*:\s*(\d+)"), int),
    ("link_type", re.compile(r"Link type\s*:\s*(\S+)"), str),
    ("qps", re.compile(r"Number of qps\s*:\s*(\d+)"), int),
)


def parse_ib_write_bw(text):
    """Parse perftest ``ib_write_bw`` client output.

    Returns {"unit", "rows": [{"bytes", "iterations", "peak_gbps", "avg_gbps", "msg_rate_mpps"}],
    "avg_gbps", "peak_gbps", "device", "gid_index", "mtu", "link_type", "qps"}; ``avg_gbps`` is the
    mean of the rows' averages (``--run_infinitely`` prints one row per interval).  MB/sec
    results (no ``--report_gbits``) are converted: perftest's MB is 2**20 bytes.  Lines that are
    not result rows (CPU frequency warnings) are skipped.  Returns None when there is no result row.
    """
    info = {"unit": None, "rows": [], "device": None, "gid_index": None, "mtu": None, "link_type": None, "qps": None}
    factor = None
    for raw in (text or "").splitlines():
        header = _BW_HEADER.search(raw)
        if header:
            info["unit"] = header.group(2) + "/sec"
            factor = 1.0 if header.group(2) == "Gb" else _MBS_TO_GBPS
            continue
        if factor is None:
            for key, pattern, convert in _BW_FIELDS:
                field = pattern.search(raw)
                if field:
                    info[key] = convert(field.group(1))
            continue
        row = _BW_ROW.match(raw)
        if row:
            info["rows"].append({
                "bytes": int(row.group(1)),
                "iterations": int(row.group(2)),
                "peak_gbps": round(float(row.group(3)) * factor, 2),
                "avg_gbps": round(float(row.group(4)) * factor, 2),
                "msg_rate_mpps": float(row.group(5)),
            })
    if not info["rows"]:
        return None
    info["avg_gbps"] = round(sum(r["avg_gbps"] for r in info["rows"]) / len(info["rows"]), 2)
    info["peak_gbps"] = max(r["peak_gbps"] for r in info["rows"])
    return info


# ---------------------------------------------------------------------------------------------
# sysfs
# ---------------------------------------------------------------------------------------------

def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError, UnicodeDecodeError):
        return None


def _listdir(path):
    try:
        return os.listdir(path)
    except (IOError, OSError):
        return []


def _int_sorted(names):
    return sorted((n for n in names if n.isdigit()), key=int)


def read_gid_table(port_dir):
    """Populated GID entries of one port: [{"index", "gid", "type", "ndev", "ipv4"}], by index.

    Unused entries read as the all-zero GID and their attributes fail with EINVAL: skipped.
    """
    table = []
    for name in _int_sorted(_listdir(os.path.join(port_dir, "gids"))):
        gid = _read(os.path.join(port_dir, "gids", name))
        if _is_zero_gid(gid):
            continue
        table.append({
            "index": int(name),
            "gid": gid,
            "type": _read(os.path.join(port_dir, "gid_attrs", "types", name)),
            "ndev": _read(os.path.join(port_dir, "gid_attrs", "ndevs", name)) or None,
            "ipv4": gid_to_ipv4(gid),
        })
    return table


def read_rdma_ports(sysfs_root):
    """Every RDMA port under ``<sysfs_root>/class/infiniband``; raise RoceError when there is none."""
    base = os.path.join(sysfs_root, "class", "infiniband")
    devices = sorted(_listdir(base))
    if not devices:
        raise RoceError(
            "no RDMA devices: %s is missing or empty (is the RDMA driver loaded: mlx5_ib for ConnectX, "
            "rdma_rxe for soft-RoCE?)" % base)
    ports = []
    for dev in devices:
        dev_dir = os.path.join(base, dev)
        for name in _int_sorted(_listdir(os.path.join(dev_dir, "ports"))):
            port_dir = os.path.join(dev_dir, "ports", name)
            rate = _read(os.path.join(port_dir, "rate"))
            ports.append({
                "device": dev,
                "port": int(name),
                "state": parse_port_state(_read(os.path.join(port_dir, "state"))),
                "phys_state": parse_phys_state(_read(os.path.join(port_dir, "phys_state"))),
                "rate": rate,
                "rate_mbps": parse_rate_mbps(rate),
                "link_layer": _read(os.path.join(port_dir, "link_layer")),
                "gids": read_gid_table(port_dir),
                "pci_netdevs": sorted(_listdir(os.path.join(dev_dir, "device", "net"))),
            })
    return ports


def read_netdev(sysfs_root, name):
    """MTU, speed and operstate of one netdev from ``<sysfs_root>/class/net/<name>``; None if absent."""
    net_dir = os.path.join(sysfs_root, "class", "net", name)
    if not os.path.isdir(net_dir):
        return None
    mtu = _read(os.path.join(net_dir, "mtu"))
    return {
        "mtu": int(mtu) if mtu and mtu.isdigit() else None,
        "speed_mbps": parse_sysfs_speed(_read(os.path.join(net_dir, "speed"))),
        "operstate": _read(os.path.join(net_dir, "operstate")),
    }


# ---------------------------------------------------------------------------------------------
# judgement
# ---------------------------------------------------------------------------------------------

def port_netdev(port, rdma_links):
    """(netdev, source, conflict) for a port: the GID table's own netdev first, then rdma link,
    then the PCI function's single netdev."""
    link = (rdma_links or {}).get((port["device"], port["port"]), {})
    from_gids = next((g["ndev"] for g in port.get("gids", []) if g.get("ndev")), None)
    from_rdma = link.get("netdev")
    conflict = None
    if from_gids and from_rdma and from_gids != from_rdma:
        conflict = "sysfs GID table names %s, rdma link names %s" % (from_gids, from_rdma)
    if from_gids:
        return from_gids, "sysfs gid_attrs", conflict
    if from_rdma:
        return from_rdma, "rdma link", conflict
    pci = port.get("pci_netdevs") or []
    if len(pci) == 1:
        return pci[0], "sysfs device/net", conflict
    return None, None, conflict


def _in_networks(cidr, networks):
    addr = ipaddress.IPv4Interface(u"%s" % cidr).ip
    return any(addr in net for net in networks)


def _label(name, port, netdev):
    return "%s port %s (%s)" % (name, port, netdev or "no netdev")


def _parse_device_filter(devices):
    wanted = []
    for item in devices or []:
        name, sep, port = item.partition(":")
        if not sep:
            name, sep, port = item.partition("/")
        wanted.append((name, int(port) if port.isdigit() else None, item))
    return wanted


def select_ports(ports, addresses, rdma_links, devices=None, networks=None):
    """Choose the ports to check.

    ``devices`` (names, or ``name:port``) picks them explicitly; a name that is not there is a
    failure.  Otherwise every RoCE port (link layer Ethernet) whose netdev holds an IPv4 address
    (inside ``networks`` when given) is checked.  Returns (selected, ignored, failures).
    """
    failures = []
    ignored = []
    selected = []
    if devices:
        for name, port_no, raw in _parse_device_filter(devices):
            matches = [p for p in ports if p["device"] == name and (port_no is None or p["port"] == port_no)]
            if not matches:
                failures.append("device %s: not found in sysfs (RDMA devices present: %s)" % (
                    raw, ", ".join(sorted(set(p["device"] for p in ports))) or "none"))
            selected.extend(m for m in matches if m not in selected)
        return selected, ignored, failures
    for port in ports:
        netdev = port_netdev(port, rdma_links)[0]
        ipv4 = (addresses.get(netdev) or {}).get("ipv4", []) if netdev else []
        if port.get("link_layer") not in (None, "Ethernet"):
            reason = "link layer %s, not RoCE" % port["link_layer"]
        elif not netdev:
            reason = "no netdev"
        elif not ipv4:
            reason = "netdev %s has no IPv4 address" % netdev
        elif networks and not any(_in_networks(a, networks) for a in ipv4):
            reason = "netdev %s has no IPv4 address in %s (has %s)" % (
                netdev, ", ".join(str(n) for n in networks), ", ".join(ipv4))
        else:
            selected.append(port)
            continue
        ignored.append({"name": port["device"], "port": port["port"], "netdev": netdev, "reason": reason})
    if not selected:
        where = " in %s" % ", ".join(str(n) for n in networks) if networks else ""
        seen = "; ".join("%s port %s: %s" % (i["name"], i["port"], i["reason"]) for i in ignored) or "none"
        failures.append("no RoCE device to check: no RDMA port's netdev holds an IPv4 address%s (seen: %s)" % (where, seen))
    return selected, ignored, failures


def _check(ok, value, expected):
    return {"ok": bool(ok), "value": value, "expected": expected}


def judge_port(port, netdev_info, addresses, rdma_links, ibv, ibv_error, networks, limits):
    """Judge one RDMA port.  Returns (device_result, failures)."""
    name, port_no = port["device"], port["port"]
    netdev, netdev_source, conflict = port_netdev(port, rdma_links)
    link = (rdma_links or {}).get((name, port_no), {})
    state = port.get("state") or link.get("state")
    phys_state = port.get("phys_state") or link.get("physical_state")
    checks = {}
    problems = []

    def add(check, ok, value, expected, problem=None):
        checks[check] = _check(ok, value, expected)
        if not ok and problem:
            problems.append(problem)

    if netdev:
        add("netdev", conflict is None, netdev, "netdev bound to the RDMA port",
            "netdev mapping disagrees: %s" % conflict)
    else:
        add("netdev", False, None, "netdev bound to the RDMA port",
            "no netdev bound to the RDMA port (sysfs gid_attrs/ndevs empty, no rdma link netdev, "
            "no single netdev under device/net)")

    add("port_state", state == "ACTIVE", state, "ACTIVE", "port state %s, expected ACTIVE" % (state or "unknown"))
    add("phys_state", phys_state == "LinkUp", phys_state, "LinkUp",
        "physical state %s, expected LinkUp" % (phys_state or "unknown"))

    # speed: the netdev's (what ethtool prints), else the RDMA port rate
    speed = (netdev_info or {}).get("speed_mbps")
    speed_source = "netdev" if speed else None
    if speed is None and port.get("rate_mbps"):
        speed, speed_source = port["rate_mbps"], "rdma rate"
    if limits["min_speed_mbps"]:
        add("speed", speed is not None and speed >= limits["min_speed_mbps"], speed,
            ">= %d Mb/s" % limits["min_speed_mbps"],
            "link speed %s below min_speed_mbps %d" % ("%d Mb/s" % speed if speed else "unknown",
                                                       limits["min_speed_mbps"]))

    mtu = (netdev_info or {}).get("mtu")
    if limits["min_mtu"]:
        if netdev and netdev_info is None:
            add("mtu", False, None, ">= %d" % limits["min_mtu"], "netdev %s not found under class/net" % netdev)
        else:
            add("mtu", mtu is not None and mtu >= limits["min_mtu"], mtu, ">= %d" % limits["min_mtu"],
                "netdev MTU %s below min_mtu %d" % (mtu, limits["min_mtu"]) if netdev else None)

    ibv_port = ((ibv or {}).get(name) or {}).get("ports", {}).get(port_no)
    active_mtu = (ibv_port or {}).get("active_mtu")
    if limits["min_active_mtu"]:
        if ibv_error:
            add("active_mtu", False, None, ">= %d" % limits["min_active_mtu"],
                "active RDMA MTU unknown: %s" % ibv_error)
        elif ibv_port is None:
            add("active_mtu", False, None, ">= %d" % limits["min_active_mtu"],
                "active RDMA MTU unknown: ibv_devinfo does not list %s port %s" % (name, port_no))
        else:
            add("active_mtu", active_mtu is not None and active_mtu >= limits["min_active_mtu"], active_mtu,
                ">= %d" % limits["min_active_mtu"],
                "active RDMA MTU %s below min_active_mtu %d (RoCE uses the largest IB MTU that fits the "
                "netdev MTU: 4096 needs a netdev MTU of at least 4200)" % (active_mtu, limits["min_active_mtu"]))

    # IPv4 address of the netdev, inside the fabric networks when given
    all_ipv4 = (addresses.get(netdev) or {}).get("ipv4", []) if netdev else []
    candidates = [a for a in all_ipv4 if not networks or _in_networks(a, networks)]
    ipv4_cidr = candidates[0] if candidates else None
    ipv4 = ipv4_cidr.split("/")[0] if ipv4_cidr else None
    where = " in %s" % ", ".join(str(n) for n in networks) if networks else ""
    if netdev:
        add("ipv4", ipv4 is not None, ipv4_cidr, "an IPv4 address%s" % where,
            "netdev %s has no IPv4 address%s%s" % (netdev, where, " (has %s)" % ", ".join(all_ipv4) if all_ipv4 else ""))
    else:
        add("ipv4", False, None, "an IPv4 address%s" % where)

    # the RoCE v2 GID that carries that address
    gid_entry = None
    if ipv4:
        carrying = [g for g in port.get("gids", []) if g.get("ipv4") == ipv4 and g.get("ndev") in (None, netdev)]
        v2 = [g for g in carrying if g.get("type") == ROCE_V2]
        gid_entry = v2[0] if v2 else None
        if gid_entry:
            add("roce_v2_gid", True, gid_entry["index"], "RoCE v2 GID ::ffff:%s" % ipv4)
        elif carrying:
            add("roce_v2_gid", False, None, "RoCE v2 GID ::ffff:%s" % ipv4,
                "no RoCE v2 GID carries %s (only %s)" % (ipv4, ", ".join(
                    "%s at index %d" % (g.get("type") or "untyped", g["index"]) for g in carrying)))
        else:
            add("roce_v2_gid", False, None, "RoCE v2 GID ::ffff:%s" % ipv4,
                "no GID carries %s (the kernel adds ::ffff:%s when the address is on %s and the port is bound to it)"
                % (ipv4, ipv4, netdev))
    else:
        # the ipv4 (or netdev) check already says why; no second message for the same cause
        add("roce_v2_gid", False, None, "RoCE v2 GID carrying the netdev's IPv4 address")

    result = {
        "name": name,
        "port": port_no,
        "netdev": netdev,
        "netdev_source": netdev_source,
        "link_layer": port.get("link_layer"),
        "state": state,
        "phys_state": phys_state,
        "rate": port.get("rate"),
        "speed_mbps": speed,
        "speed_source": speed_source,
        "mtu": mtu,
        "active_mtu": active_mtu,
        "ipv4": ipv4,
        "gid_index": gid_entry["index"] if gid_entry else None,
        "gid": gid_entry["gid"] if gid_entry else None,
        "checks": checks,
        "ok": all(c["ok"] for c in checks.values()),
    }
    label = _label(name, port_no, netdev)
    return result, ["%s: %s" % (label, p) for p in problems]


def check_ports(ports, netdevs, addresses, rdma_links=None, ibv=None, ibv_error=None, devices=None,
                fabric_subnets=None, min_speed_mbps=DEFAULT_MIN_SPEED_MBPS, min_mtu=DEFAULT_MIN_MTU,
                min_active_mtu=DEFAULT_MIN_ACTIVE_MTU):
    """Select and judge the ports.

    ``netdevs`` maps netdev name -> read_netdev() result (or None when it is missing).
    Returns {"devices", "ignored", "failures", "nccl_env", "warnings"}.
    """
    networks = parse_networks(fabric_subnets)
    limits = {"min_speed_mbps": min_speed_mbps, "min_mtu": min_mtu, "min_active_mtu": min_active_mtu}
    selected, ignored, failures = select_ports(ports, addresses, rdma_links, devices, networks)
    results = []
    for port in selected:
        netdev = port_netdev(port, rdma_links)[0]
        result, problems = judge_port(port, netdevs.get(netdev) if netdev else None, addresses, rdma_links,
                                      ibv, ibv_error, networks, limits)
        results.append(result)
        failures.extend(problems)
    env, warnings = nccl_env(results)
    return {"devices": results, "ignored": ignored, "failures": failures, "nccl_env": env, "warnings": warnings}


def nccl_env(devices):
    """NCCL settings for the healthy devices of this node.

    NCCL_IB_HCA and NCCL_SOCKET_IFNAME use NCCL's exact-match form (leading ``=``) so that
    ``mlx5_1`` cannot also select ``mlx5_10``.  NCCL takes one NCCL_IB_GID_INDEX for every HCA:
    it is set when all healthy devices agree; when they disagree it is left out and NCCL
    (2.21 or newer) picks each device's RoCE v2 IPv4 GID itself (NCCL_IB_ROCE_VERSION_NUM=2,
    NCCL_IB_ADDR_FAMILY=AF_INET, set explicitly), and a warning says so.
    """
    healthy = [d for d in devices if d.get("ok")]
    if not healthy:
        return {}, []
    ports_per_dev = {}
    for dev in devices:
        ports_per_dev.setdefault(dev["name"], set()).add(dev["port"])
    hcas = []
    for dev in healthy:
        hcas.append(dev["name"] if len(ports_per_dev[dev["name"]]) == 1 and dev["port"] == 1
                    else "%s:%d" % (dev["name"], dev["port"]))
    netdevs = []
    for dev in healthy:
        if dev["netdev"] not in netdevs:
            netdevs.append(dev["netdev"])
    env = {"NCCL_IB_HCA": "=" + ",".join(hcas), "NCCL_SOCKET_IFNAME": "=" + ",".join(netdevs)}
    indexes = sorted(set(d["gid_index"] for d in healthy))
    warnings = []
    if len(indexes) == 1:
        env["NCCL_IB_GID_INDEX"] = str(indexes[0])
    else:
        env["NCCL_IB_ROCE_VERSION_NUM"] = "2"
        env["NCCL_IB_ADDR_FAMILY"] = "AF_INET"
        warnings.append(
            "healthy devices disagree on the RoCE v2 GID index (%s); NCCL takes a single NCCL_IB_GID_INDEX, "
            "so it is left unset and NCCL (2.21 or newer) selects each device's RoCE v2 IPv4 GID itself"
            % ", ".join("%s=%s" % (d["name"], d["gid_index"]) for d in healthy))
    return env, warnings


def failure_message(failures, devices):
    """One message listing every failed check, grouped by device."""
    groups = []
    for failure in failures:
        head, sep, tail = failure.partition(": ")
        for group in groups:
            if group[0] == head:
                group[1].append(tail)
                break
        else:
            groups.append((head, [tail] if sep else []))
    bad = len([d for d in devices if not d.get("ok")])
    parts = ["%s: %s" % (head, "; ".join(items)) if items else head for head, items in groups]
    return "RoCE check failed (%d of %d checked device(s) unhealthy): %s" % (bad, len(devices), " | ".join(parts))


# ---------------------------------------------------------------------------------------------
# bandwidth test (ib_write_bw), one device after the other
# ---------------------------------------------------------------------------------------------

_CONNECT_RETRY = re.compile(r"Couldn't connect to|Unable to init the socket connection|Connection refused")


def bandwidth_plan(devices, base_port):
    """Pair devices with TCP ports: both nodes sort their checked devices the same way and use
    ``base_port + position``, so the n-th device of the client meets the n-th of the server."""
    plan = []
    for position, dev in enumerate(sorted(devices, key=lambda d: (d["name"], d["port"]))):
        plan.append({
            "name": dev["name"],
            "port": dev["port"],
            "netdev": dev.get("netdev"),
            "gid_index": dev.get("gid_index"),
            "tcp_port": base_port + position,
            "skip": None if dev.get("ok") else "read-only checks failed",
        })
    return plan


def ib_write_bw_argv(binary, item, duration, peer=None):
    """argv for one ib_write_bw run (server without peer, client with it)."""
    argv = [binary, "-d", item["name"], "-i", str(item["port"]), "-x", str(item["gid_index"]),
            "-p", str(item["tcp_port"]), "-F", "--report_gbits", "-D", str(duration)]
    if peer:
        argv.append(peer)
    return argv


def run_bandwidth(plan, role, binary, run, clock, sleep, duration, timeout, peer=None, min_gbps=0.0,
                  retry_interval=1.0):
    """Run the plan sequentially and judge it.

    ``run(argv, timeout)`` returns (rc, stdout, stderr) and must bound the process by ``timeout``
    seconds (rc 124 when it expires), so no server outlives the test whatever happens.
    The server side starts one ``ib_write_bw`` server per device and waits for its client; after a
    device whose client never came, the remaining servers are skipped.  The client side retries a
    refused connection until ``timeout`` seconds have passed for that device (the server for the
    next device starts only when the previous test has ended).
    Returns {"devices": [...], "total_gbps", "ok", "failures"}.
    """
    results = []
    failures = []
    abandoned = None
    for item in plan:
        entry = {"name": item["name"], "port": item["port"], "tcp_port": item["tcp_port"],
                 "gid_index": item["gid_index"], "rc": None, "avg_gbps": None, "peak_gbps": None,
                 "ok": False, "msg": None, "cmd": None, "attempts": 0}
        label = _label(item["name"], item["port"], item.get("netdev"))
        results.append(entry)
        if item.get("skip") or abandoned:
            entry["msg"] = "not run: %s" % (item.get("skip") or abandoned)
            failures.append("%s: bandwidth test %s" % (label, entry["msg"]))
            continue
        argv = ib_write_bw_argv(binary, item, duration, peer if role == "client" else None)
        entry["cmd"] = " ".join(argv)
        deadline = clock() + timeout
        while True:
            entry["attempts"] += 1
            left = max(1, int(round(deadline - clock())))
            rc, out, err = run(argv, left)
            if (role == "client" and rc not in (0, 124) and _CONNECT_RETRY.search((out or "") + (err or ""))
                    and clock() + retry_interval < deadline):
                sleep(retry_interval)
                continue
            break
        entry["rc"] = rc
        parsed = parse_ib_write_bw(out) if rc == 0 else None
        if parsed:
            entry["avg_gbps"], entry["peak_gbps"] = parsed["avg_gbps"], parsed["peak_gbps"]
        if rc == 124:
            if role == "server":
                entry["msg"] = "no client completed a test within %d s (the client task must run at the same time)" % timeout
                abandoned = "an earlier server got no client"
            else:
                entry["msg"] = "timed out after %d s" % timeout
        elif rc != 0:
            tail = ((err or "").strip() or (out or "").strip()).splitlines()[-3:]
            entry["msg"] = "ib_write_bw failed (rc %s): %s" % (rc, " / ".join(t.strip() for t in tail) or "no output")
        elif role == "client" and not parsed:
            entry["msg"] = "no result row in ib_write_bw output"
        elif role == "client" and parsed["avg_gbps"] < min_gbps:
            entry["msg"] = "RDMA write bandwidth %.2f Gb/s below min_bandwidth_gbps %s" % (parsed["avg_gbps"], min_gbps)
        else:
            entry["ok"] = True
        if not entry["ok"]:
            failures.append("%s: bandwidth test %s" % (label, entry["msg"]))
    measured = [e["avg_gbps"] for e in results if e["avg_gbps"] is not None]
    total = round(sum(measured), 2) if measured else None
    return {"devices": results, "total_gbps": total, "ok": not failures and bool(results), "failures": failures}
