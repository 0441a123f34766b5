# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the ``wake_on_lan`` module: Wake-on-LAN on the LAN interface, now and persisted.

Pure: parsers of ``ethtool``, ``nmcli`` and ``netplan get`` output, the choice of how the interface's configuration
is persisted (NetworkManager when it manages the interface, else the netplan definition that names it), the plan
(facts in, actions out), the netplan drop-in and the module's result. No Ansible imports and no I/O: power_io.py
reads the facts and carries out the plan; the tests drive this file with plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import ipaddress
import re

PERSIST_CHOICES = ("auto", "netplan", "networkmanager", "none")
NETPLAN_FILE = "/etc/netplan/90-dgx-spark-wol.yaml"
NETPLAN_HEADER = ("# Managed by dgx_spark.cluster (wake_on_lan): Wake-on-LAN on magic packet for the LAN interface,\n"
                  "# merged by netplan into the definition that configures it. Remove this file to undo.\n")
NM_PROPERTY = "802-3-ethernet.wake-on-lan"
MAGIC = "g"  # ethtool's letter for "wake on magic packet"


class PowerInputError(ValueError):
    """Facts that allow no safe plan; the message says what was found and what to do."""


# ---------------------------------------------------------------------------------------------
# parsers (pure)
# ---------------------------------------------------------------------------------------------

def parse_ethtool_wol(text):
    """``ethtool <if>`` -> ``{supports, wake_on}``: the letters after ``Supports Wake-on:`` and ``Wake-on:``
    (None when the line is absent: the driver has no Wake-on-LAN at all)."""
    supports = wake_on = None
    for line in (text or "").splitlines():
        match = re.match(r"^\s*Supports Wake-on:\s*(\S*)", line)
        if match:
            supports = match.group(1)
            continue
        match = re.match(r"^\s*Wake-on:\s*(\S*)", line)
        if match:
            wake_on = match.group(1)
    return {"supports": supports, "wake_on": wake_on}


def parse_nmcli_terse(text):
    """``nmcli -t -f A,B ...`` (``FIELD:value`` per line) -> ``{FIELD: value}`` (values may contain colons)."""
    fields = {}
    for line in (text or "").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def nm_device_state(fields):
    """``{managed, connection}`` from ``nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show <if>`` fields.

    A device is managed unless its state is ``unmanaged`` (10); its connection is None when there is none
    (empty or ``--``)."""
    state = fields.get("GENERAL.STATE") or ""
    connection = fields.get("GENERAL.CONNECTION") or ""
    managed = bool(state) and "unmanaged" not in state and not state.startswith("10 ")
    return {"managed": managed, "connection": connection if connection not in ("", "--") else None}


def nm_wol_has_magic(value):
    """True when an ``802-3-ethernet.wake-on-lan`` value (``magic``, ``phy, magic``, ``0x40`` ...) includes magic."""
    value = (value or "").strip().lower()
    if value.startswith("0x"):
        try:
            return bool(int(value, 16) & 0x40)  # NM_SETTING_WIRED_WAKE_ON_LAN_MAGIC
        except ValueError:
            return False
    return "magic" in re.split(r"[\s,|]+", value)


def parse_netplan_scalar(text):
    """``netplan get <key>`` of a scalar -> the string, or None for ``null`` / nothing."""
    value = (text or "").strip()
    if value in ("", "null", "~"):
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def parse_netplan_ids(text):
    """``netplan get ethernets`` -> the definition ids (the mapping's keys, in order)."""
    ids = []
    for line in (text or "").splitlines():
        match = re.match(r"""^(?:"([^"]+)"|'([^']+)'|([^\s#'"][^:]*)):\s*(?:\{\})?\s*$""", line)
        if match:
            ids.append(next(group for group in match.groups() if group is not None))
    return ids


def netdef_matches(ifname, mac, netdef_id, match_name=None, match_mac=None, set_name=None):
    """Whether a netplan ethernets definition configures ``ifname`` (its id, ``set-name``, or its ``match``)."""
    if set_name:
        return set_name == ifname
    if match_name or match_mac:
        if match_name and not fnmatch.fnmatchcase(ifname, match_name):
            return False
        if match_mac and (mac or "").lower() != match_mac.lower():
            return False
        return True
    return netdef_id == ifname


# ---------------------------------------------------------------------------------------------
# decisions (pure)
# ---------------------------------------------------------------------------------------------

def choose_persist(requested, ifname, nm, netplan):
    """How Wake-on-LAN is persisted: ``networkmanager``, ``netplan`` or ``none``.

    ``nm``: None when NetworkManager does not run, else ``{managed, connection}``. ``netplan``: None when netplan
    is not installed, else ``{netdef}`` (the id of the definition that configures the interface, or None).
    ``auto`` takes NetworkManager when it manages the interface with a connection, else netplan when a netplan
    definition configures it; anything else is an error that names what was found."""
    nm_ok = bool(nm and nm.get("managed") and nm.get("connection"))
    netplan_ok = bool(netplan and netplan.get("netdef"))
    if requested == "none":
        return "none"
    if requested == "networkmanager":
        if not nm_ok:
            raise PowerInputError("persist=networkmanager, but %s" % _nm_finding(ifname, nm))
        return "networkmanager"
    if requested == "netplan":
        if not netplan_ok:
            raise PowerInputError("persist=netplan, but %s" % _netplan_finding(ifname, netplan))
        return "netplan"
    if requested != "auto":
        raise PowerInputError("persist must be one of %s, got %r" % (", ".join(PERSIST_CHOICES), requested))
    if nm_ok:
        return "networkmanager"
    if netplan_ok:
        return "netplan"
    raise PowerInputError(
        "cannot tell how %s is configured, so Wake-on-LAN cannot be persisted: %s; %s. Set persist (the role's "
        "power_wol_persist) to networkmanager or netplan once one of them configures %s, or to none to enable it "
        "only until the next boot" % (ifname, _nm_finding(ifname, nm), _netplan_finding(ifname, netplan), ifname))


def _nm_finding(ifname, nm):
    if nm is None:
        return "NetworkManager is not running"
    if not nm.get("managed"):
        return "NetworkManager does not manage %s" % ifname
    return "NetworkManager manages %s but no connection is active on it" % ifname


def _netplan_finding(ifname, netplan):
    if netplan is None:
        return "netplan is not installed"
    return "no netplan definition configures %s (by id, set-name or match)" % ifname


def render_netplan(netdef_id):
    """The drop-in that merges ``wakeonlan: true`` into the definition ``netdef_id`` (netplan merges by id)."""
    key = netdef_id if re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$", netdef_id) else '"%s"' % netdef_id.replace('"', '\\"')
    return NETPLAN_HEADER + "network:\n  version: 2\n  ethernets:\n    %s:\n      wakeonlan: true\n" % key


def plan(facts, persist, require_support=True, netplan_file=NETPLAN_FILE):
    """``{runtime, persist, persist_via, actions, warnings}`` from the facts (see power_io.gather_facts).

    Runtime: ``ethtool -s <if> wol g`` only when the NIC supports magic packets and does not wake on them now; a
    NIC without magic-packet support is an error unless ``require_support`` is false (then a warning).
    Persisted: the NetworkManager connection's wake-on-lan set to magic when it lacks it, or the netplan drop-in
    written when the interface's definition does not already say ``wakeonlan: true``."""
    ifname = facts["interface"]
    wol = facts.get("ethtool") or {}
    actions, warnings = [], []
    supports, wake_on = wol.get("supports"), wol.get("wake_on")
    if not supports or MAGIC not in supports:
        what = ("reports no Wake-on-LAN support (no 'Supports Wake-on' line from ethtool)" if not supports
                else "supports Wake-on '%s', without magic packet (g)" % supports)
        if require_support:
            raise PowerInputError("%s %s: a magic packet cannot wake this node. Check the NIC and its firmware "
                                  "settings" % (ifname, what))
        warnings.append("%s %s; Wake-on-LAN is not enabled on the NIC (require_support is false)" % (ifname, what))
    elif MAGIC not in (wake_on or ""):
        actions.append({"kind": "runtime", "argv": ["ethtool", "-s", ifname, "wol", MAGIC],
                        "describe": "ethtool -s %s wol g (Wake-on was '%s')" % (ifname, wake_on or "unknown")})

    method = choose_persist(persist, ifname, facts.get("nm"), facts.get("netplan"))
    via = None
    if method == "networkmanager":
        nm = facts["nm"]
        via = nm["connection"]
        if not nm_wol_has_magic(nm.get("wol")):
            actions.append({"kind": "nm", "argv": ["nmcli", "connection", "modify", "id", nm["connection"],
                                                   NM_PROPERTY, "magic"],
                            "describe": "nmcli connection modify '%s' %s magic (was '%s')"
                                        % (nm["connection"], NM_PROPERTY, nm.get("wol") or "unset")})
    elif method == "netplan":
        netplan = facts["netplan"]
        via = netplan_file
        content = render_netplan(netplan["netdef"])
        stale = netplan.get("file_content") is not None and netplan.get("file_content") != content
        if str(netplan.get("wakeonlan")).lower() != "true" or stale:
            actions.append({"kind": "netplan", "path": netplan_file, "content": content,
                            "describe": "write %s (wakeonlan: true for netplan definition '%s')"
                                        % (netplan_file, netplan["netdef"])})
    return {"persist": method, "persist_via": via, "actions": actions, "warnings": warnings}


def result(facts, planned, done=None):
    """The module's return values (``done``: the actions carried out; None in check mode: the plan)."""
    acted = planned["actions"] if done is None else done
    wol = facts.get("ethtool") or {}
    after = wol.get("wake_on")
    if any(action["kind"] == "runtime" for action in acted):
        after = MAGIC
    return {
        "changed": bool(acted),
        "interface": facts["interface"],
        "mac": facts.get("mac"),
        "supports": wol.get("supports"),
        "wake_on_before": wol.get("wake_on"),
        "wake_on": after,
        "persist": planned["persist"],
        "persist_via": planned["persist_via"],
        "actions": [action["describe"] for action in acted],
    }


def diff(facts, planned):
    """before/after text of the Wake-on-LAN state and the persisted setting."""
    wol = facts.get("ethtool") or {}
    before = ["wake-on: %s" % (wol.get("wake_on") or "unsupported")]
    after = list(before)
    for action in planned["actions"]:
        if action["kind"] == "runtime":
            after[0] = "wake-on: g"
    if planned["persist"] == "networkmanager":
        before.append("%s (%s): %s" % (NM_PROPERTY, planned["persist_via"], facts["nm"].get("wol") or "unset"))
        after.append("%s (%s): %s" % (NM_PROPERTY, planned["persist_via"], "magic" if any(
            a["kind"] == "nm" for a in planned["actions"]) else facts["nm"].get("wol") or "unset"))
    elif planned["persist"] == "netplan":
        current = facts["netplan"].get("file_content")
        before.append(current if current is not None else "(no %s)" % planned["persist_via"])
        written = [a["content"] for a in planned["actions"] if a["kind"] == "netplan"]
        after.append(written[0] if written else before[-1])
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}


def broadcast_address(subnet):
    """The IPv4 broadcast address of ``subnet`` (CIDR; host bits allowed), where magic packets are sent."""
    try:
        network = ipaddress.ip_network(u"%s" % subnet, strict=False)
    except ValueError as exc:
        raise PowerInputError("%r is not a network in CIDR form (%s)" % (subnet, exc))
    if network.version != 4:
        raise PowerInputError("%s is not an IPv4 network: Wake-on-LAN magic packets go to an IPv4 broadcast" % subnet)
    return str(network.broadcast_address)
