"""wake_on_lan module: main() with a patched AnsibleModule. ethtool answers with the Ubuntu Forums captures
(fixtures/ethtool), nmcli and netplan with their documented formats; sysfs and the netplan drop-in live in a
temporary directory. Check mode makes no mutating call; a second run changes nothing."""

import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import wake_on_lan
from module_harness import ExitJson, FailJson, load, patch_bin_path, patch_exits, patch_run_command  # noqa: E402  (sibling helper)

MAC = "4c:bb:47:2e:29:59"


class Node(object):
    """A node's state as the commands see it: the NIC's Wake-on letter, NetworkManager, netplan."""

    def __init__(self, tmp_path, wake_on="d", nm=None, netplan=None, bins=("ethtool", "nmcli", "netplan")):
        self.wake_on, self.nm, self.netplan, self.bins = wake_on, nm, netplan, bins
        self.drop_in = str(tmp_path / "90-dgx-spark-wol.yaml")
        sysfs = tmp_path / "sys"
        (sysfs / "enP7s7").mkdir(parents=True)
        (sysfs / "enP7s7" / "address").write_text(MAC + "\n")
        self.sysfs = str(sysfs)

    def respond(self, argv):
        tool = os.path.basename(argv[0])
        if tool == "ethtool" and argv[1] == "-s":
            self.wake_on = argv[4]
            return 0, "", ""
        if tool == "ethtool":
            name = "ubuntuforums-rtl8168-eth2-wol-g.txt" if self.wake_on == "g" else "ubuntuforums-gutsy-eth0-wol-d.txt"
            return 0, load("ethtool", name), ""
        if tool == "nmcli":
            if self.nm is None:
                return 8, "", "Error: NetworkManager is not running."
            if argv[1:3] == ["-t", "-f"]:
                return 0, "GENERAL.STATE:100 (connected)\nGENERAL.CONNECTION:Wired connection 1\n", ""
            if argv[1] == "-g":
                return 0, self.nm + "\n", ""
            if argv[1:3] == ["connection", "modify"]:
                self.nm = argv[-1]
                return 0, "", ""
        if tool == "netplan" and argv[1] == "get":
            key = argv[2]
            if key == "ethernets":
                return 0, "lan:\n  match:\n    macaddress: %s\n  dhcp4: true\n" % MAC, ""
            if key == "ethernets.lan.match.macaddress":
                return 0, MAC + "\n", ""
            if key == "ethernets.lan.wakeonlan":
                return 0, ("true\n" if os.path.exists(self.drop_in) else "null\n"), ""
            return 0, "null\n", ""
        raise AssertionError("unexpected command %s" % argv)


def run(monkeypatch, node, check_mode=False, diff=False, **args):
    args = dict(args)
    args.setdefault("interface", "enP7s7")
    args.setdefault("netplan_file", node.drop_in)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    warnings = []
    patch_exits(monkeypatch, warnings)
    calls = patch_run_command(monkeypatch, node.respond)
    patch_bin_path(monkeypatch, node.bins)
    monkeypatch.setattr(wake_on_lan.power_io, "SYSFS_NET", node.sysfs)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            wake_on_lan.main()
    return caught.value.args[0], [[os.path.basename(c[0])] + c[1:] for c in calls], warnings


def mutating(calls):
    return [c for c in calls if (c[0] == "ethtool" and c[1] == "-s") or c[1:3] == ["connection", "modify"]]


def test_check_mode_reports_and_changes_nothing(tmp_path, monkeypatch):
    node = Node(tmp_path, nm="default")
    result, calls, unused = run(monkeypatch, node, check_mode=True, diff=True)
    assert result["changed"] is True and result["persist"] == "networkmanager"
    assert result["actions"] == [
        "ethtool -s enP7s7 wol g (Wake-on was 'd')",
        "nmcli connection modify 'Wired connection 1' 802-3-ethernet.wake-on-lan magic (was 'default')"]
    assert mutating(calls) == [] and node.wake_on == "d" and node.nm == "default"
    assert result["diff"]["after"].startswith("wake-on: g\n")


def test_networkmanager_then_a_second_run_changes_nothing(tmp_path, monkeypatch):
    node = Node(tmp_path, nm="default")
    result, calls, unused = run(monkeypatch, node)
    assert result["changed"] is True and result["wake_on"] == "g" and result["mac"] == MAC
    assert mutating(calls) == [["ethtool", "-s", "enP7s7", "wol", "g"],
                               ["nmcli", "connection", "modify", "id", "Wired connection 1",
                                "802-3-ethernet.wake-on-lan", "magic"]]
    again, calls, unused = run(monkeypatch, node)
    assert again["changed"] is False and again["actions"] == [] and mutating(calls) == []


def test_netplan_drop_in_merged_into_the_definition_that_matches_by_mac(tmp_path, monkeypatch):
    node = Node(tmp_path, wake_on="g", nm=None)
    result, unused, unused_w = run(monkeypatch, node)
    assert result["changed"] is True and result["persist"] == "netplan" and result["persist_via"] == node.drop_in
    with open(node.drop_in) as handle:
        assert handle.read().endswith("  ethernets:\n    lan:\n      wakeonlan: true\n")
    assert oct(os.stat(node.drop_in).st_mode & 0o777) == "0o600"
    again, unused, unused_w = run(monkeypatch, node)
    assert again["changed"] is False


def test_auto_without_networkmanager_or_netplan_fails_naming_both(tmp_path, monkeypatch):
    node = Node(tmp_path, nm=None, bins=("ethtool",))
    result, calls, unused = run(monkeypatch, node)
    assert result["failed"] is True
    assert "NetworkManager is not running" in result["msg"] and "netplan is not installed" in result["msg"]
    assert mutating(calls) == []


def test_missing_interface_is_named(tmp_path, monkeypatch):
    node = Node(tmp_path, nm="magic")
    result, unused, unused_w = run(monkeypatch, node, interface="eth9")
    assert result["failed"] is True and "eth9: no such network interface" in result["msg"]
