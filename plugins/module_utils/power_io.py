# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O layer of ``wake_on_lan``: reads the facts power.plan takes (``ethtool``, ``nmcli``, ``netplan get``, sysfs,
the drop-in file) through the collection's CommandRunner, and carries out a plan, verifying each step. Nothing here
decides anything. No Ansible imports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.dgx_spark.cluster.plugins.module_utils import power

NM_NOT_RUNNING = 8  # nmcli(1): NetworkManager is not running
SYSFS_NET = "/sys/class/net"


def read_text(path):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_ethtool(runner, ethtool, ifname):
    rc, out, err = runner.run([ethtool, ifname], check=False)
    if rc != 0 and "Settings for" not in (out or ""):
        runner.fail("ethtool cannot read %s" % ifname, [ethtool, ifname], rc, out, err)
    return power.parse_ethtool_wol(out)


def read_nm(runner, nmcli, ifname):
    """None when NetworkManager is not there or not running; else ``{managed, connection, wol}``."""
    if not nmcli:
        return None
    argv = [nmcli, "-t", "-f", "GENERAL.STATE,GENERAL.CONNECTION", "device", "show", ifname]
    rc, out, err = runner.run(argv, check=False)
    if rc == NM_NOT_RUNNING:
        return None
    if rc != 0:
        return {"managed": False, "connection": None, "wol": None}
    nm = power.nm_device_state(power.parse_nmcli_terse(out))
    nm["wol"] = None
    if nm["managed"] and nm["connection"]:
        nm_argv = [nmcli, "-g", power.NM_PROPERTY, "connection", "show", "id", nm["connection"]]
        rc, out, err = runner.run(nm_argv, check=False)
        if rc != 0:
            runner.fail("nmcli cannot read the connection '%s' of %s" % (nm["connection"], ifname), nm_argv, rc, out, err)
        nm["wol"] = out.strip()
    return nm


def netplan_get(runner, netplan, key):
    rc, out, err = runner.run([netplan, "get", key], check=False)
    if rc != 0:
        runner.fail("netplan get %s failed" % key, [netplan, "get", key], rc, out, err)
    return out


def read_netplan(runner, netplan, ifname, mac, netplan_file):
    """None when netplan is not installed; else ``{netdef, wakeonlan, file_content}``."""
    if not netplan:
        return None
    found = None
    if power.parse_netplan_scalar(netplan_get(runner, netplan, "ethernets.%s" % ifname)) is not None:
        found = ifname
    else:
        for netdef in power.parse_netplan_ids(netplan_get(runner, netplan, "ethernets")):
            if "." in netdef:
                continue  # not addressable by `netplan get`'s dotted keys
            values = dict((key, power.parse_netplan_scalar(netplan_get(runner, netplan, "ethernets.%s.%s" % (netdef, key))))
                          for key in ("set-name", "match.name", "match.macaddress"))
            if power.netdef_matches(ifname, mac, netdef, values["match.name"], values["match.macaddress"],
                                    values["set-name"]):
                found = netdef
                break
    wakeonlan = None
    if found:
        wakeonlan = power.parse_netplan_scalar(netplan_get(runner, netplan, "ethernets.%s.wakeonlan" % found))
    return {"netdef": found, "wakeonlan": wakeonlan, "file_content": read_text(netplan_file)}


def gather_facts(runner, ifname, persist, netplan_file):
    """The facts power.plan takes; reads only."""
    if not os.path.isdir(os.path.join(SYSFS_NET, ifname)):
        runner.module.fail_json(msg="%s: no such network interface on this node (%s/%s is missing)"
                                    % (ifname, SYSFS_NET, ifname), interface=ifname)
    mac = (read_text(os.path.join(SYSFS_NET, ifname, "address")) or "").strip() or None
    facts = {"interface": ifname, "mac": mac,
             "ethtool": read_ethtool(runner, runner.binary("ethtool"), ifname), "nm": None, "netplan": None}
    if persist in ("auto", "networkmanager"):
        facts["nm"] = read_nm(runner, runner.binary("nmcli", required=False), ifname)
    if persist in ("auto", "netplan") and not (facts["nm"] and facts["nm"]["managed"] and facts["nm"]["connection"]):
        facts["netplan"] = read_netplan(runner, runner.binary("netplan", required=False), ifname, mac, netplan_file)
    return facts


def write_file(path, content, mode=0o600):
    """Atomic write (a temporary file in the same directory, renamed over the target), mode 0600 as netplan wants."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".dgx-spark-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def restore_file(path, content):
    if content is None:
        if os.path.exists(path):
            os.remove(path)
    else:
        write_file(path, content)


def execute(runner, facts, planned):
    """Carry out the plan, each step verified; returns the actions done (fails the module on the first that does not
    hold, naming it)."""
    done = []
    for action in planned["actions"]:
        if action["kind"] == "runtime":
            argv = [runner.binary("ethtool")] + action["argv"][1:]
            runner.run(argv, msg="enabling Wake-on-LAN on %s failed" % facts["interface"])
            now = read_ethtool(runner, argv[0], facts["interface"])
            if power.MAGIC not in (now.get("wake_on") or ""):
                runner.module.fail_json(msg="%s still reports Wake-on '%s' after ethtool -s %s wol g"
                                            % (facts["interface"], now.get("wake_on"), facts["interface"]),
                                        **power.result(facts, planned, done))
        elif action["kind"] == "nm":
            argv = [runner.binary("nmcli")] + action["argv"][1:]
            runner.run(argv, msg="setting %s on the NetworkManager connection failed" % power.NM_PROPERTY)
        elif action["kind"] == "netplan":
            netplan = runner.binary("netplan")
            previous = facts["netplan"].get("file_content")
            write_file(action["path"], action["content"])
            key = "ethernets.%s.wakeonlan" % facts["netplan"]["netdef"]
            rc, out, err = runner.run([netplan, "get", key], check=False)
            if rc != 0 or str(power.parse_netplan_scalar(out)).lower() != "true":
                restore_file(action["path"], previous)
                runner.fail("netplan does not read wakeonlan: true for '%s' from %s; the file was restored"
                            % (facts["netplan"]["netdef"], action["path"]), [netplan, "get", key], rc, out, err)
        done.append(action)
    return done
