"""power core (pure): ethtool/nmcli/netplan parsers on captured and labelled constructed output, the choice of how
Wake-on-LAN is persisted, the plan (runtime only when not 'g'; persisted only when missing), the netplan drop-in,
the result and the diff, and the LAN broadcast address."""

import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import power

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


def facts(wake_on="d", supports="pumbg", nm=None, netplan=None):
    return {"interface": "enP7s7", "mac": "4c:bb:47:2e:29:59", "ethtool": {"supports": supports, "wake_on": wake_on},
            "nm": nm, "netplan": netplan}


NM = {"managed": True, "connection": "Wired connection 1", "wol": "default"}


@pytest.mark.parametrize("name,expected", [
    ("ubuntuforums-gutsy-eth0-wol-d.txt", {"supports": "pumbg", "wake_on": "d"}),
    ("ubuntuforums-rtl8168-eth2-wol-g.txt", {"supports": "pumbg", "wake_on": "g"}),
    ("constructed-veth-no-wol.txt", {"supports": None, "wake_on": None}),
    ("spark-grep-speed-200G.txt", {"supports": None, "wake_on": None}),
])
def test_parse_ethtool_wol(name, expected):
    assert power.parse_ethtool_wol(load("ethtool", name)) == expected


def test_parse_ethtool_reads_the_setting_not_the_capability_line():
    # "Supports Wake-on: pumbg" contains a g; the setting is the other line.
    assert power.parse_ethtool_wol("\tSupports Wake-on: pumbg\n\tWake-on: d\n")["wake_on"] == "d"


def test_nm_device_state():
    connected = power.nm_device_state(power.parse_nmcli_terse(load("nmcli", "constructed-device-show-connected.txt")))
    assert connected == {"managed": True, "connection": "Wired connection 1"}
    unmanaged = power.nm_device_state(power.parse_nmcli_terse(load("nmcli", "constructed-device-show-unmanaged.txt")))
    assert unmanaged == {"managed": False, "connection": None}
    assert power.nm_device_state({"GENERAL.STATE": "30 (disconnected)", "GENERAL.CONNECTION": "--"}) == {
        "managed": True, "connection": None}


@pytest.mark.parametrize("value,magic", [("magic", True), ("phy, magic", True), ("default", False), ("", False),
                                         ("0x40", True), ("0x2", False), ("ignore", False)])
def test_nm_wol_has_magic(value, magic):
    assert power.nm_wol_has_magic(value) is magic


def test_netplan_parsers():
    assert power.parse_netplan_scalar("null\n") is None
    assert power.parse_netplan_scalar("true\n") == "true"
    assert power.parse_netplan_scalar("'en*'\n") == "en*"
    text = "enP7s7:\n  dhcp4: true\n\"NM-5a1b\":\n  match:\n    name: \"enP7s7\"\nlan0: {}\n"
    assert power.parse_netplan_ids(text) == ["enP7s7", "NM-5a1b", "lan0"]


@pytest.mark.parametrize("kwargs,matches", [
    (dict(netdef_id="enP7s7"), True),
    (dict(netdef_id="lan"), False),
    (dict(netdef_id="lan", match_name="enP*"), True),
    (dict(netdef_id="lan", match_mac="4C:BB:47:2E:29:59"), True),
    (dict(netdef_id="lan", match_name="enP*", match_mac="00:11:22:33:44:55"), False),
    (dict(netdef_id="lan", set_name="enP7s7"), True),
    (dict(netdef_id="enP7s7", set_name="lan0"), False),
])
def test_netdef_matches(kwargs, matches):
    assert power.netdef_matches("enP7s7", "4c:bb:47:2e:29:59", **kwargs) is matches


def test_auto_prefers_networkmanager_then_netplan_else_names_what_it_found():
    assert power.choose_persist("auto", "enP7s7", NM, {"netdef": "enP7s7"}) == "networkmanager"
    assert power.choose_persist("auto", "enP7s7", None, {"netdef": "enP7s7"}) == "netplan"
    assert power.choose_persist("auto", "enP7s7", {"managed": False, "connection": None}, {"netdef": "lan"}) == "netplan"
    with pytest.raises(power.PowerInputError) as caught:
        power.choose_persist("auto", "enP7s7", None, {"netdef": None})
    message = str(caught.value)
    assert "NetworkManager is not running" in message
    assert "no netplan definition configures enP7s7" in message and "power_wol_persist" in message
    with pytest.raises(power.PowerInputError, match="netplan is not installed"):
        power.choose_persist("auto", "enP7s7", {"managed": False, "connection": None}, None)
    with pytest.raises(power.PowerInputError, match="persist=networkmanager, but NetworkManager does not manage"):
        power.choose_persist("networkmanager", "enP7s7", {"managed": False, "connection": None}, None)
    assert power.choose_persist("none", "enP7s7", None, None) == "none"


def test_plan_enables_now_and_persists_with_networkmanager():
    planned = power.plan(facts(nm=NM), "auto")
    assert planned["persist"] == "networkmanager" and planned["persist_via"] == "Wired connection 1"
    assert [a["argv"] for a in planned["actions"]] == [
        ["ethtool", "-s", "enP7s7", "wol", "g"],
        ["nmcli", "connection", "modify", "id", "Wired connection 1", "802-3-ethernet.wake-on-lan", "magic"]]
    result = power.result(facts(nm=NM), planned)
    assert result["changed"] and result["wake_on_before"] == "d" and result["wake_on"] == "g"


def test_plan_is_empty_when_it_wakes_on_magic_already():
    done = dict(NM, wol="magic")
    planned = power.plan(facts(wake_on="g", nm=done), "auto")
    assert planned["actions"] == []
    assert power.result(facts(wake_on="g", nm=done), planned)["changed"] is False
    # Another letter beside g (pg) already wakes on magic packets: left alone.
    assert power.plan(facts(wake_on="pg", nm=done), "auto")["actions"] == []


def test_plan_netplan_writes_the_drop_in_only_when_netplan_lacks_it():
    netplan = {"netdef": "NM-5a1b", "wakeonlan": None, "file_content": None}
    planned = power.plan(facts(wake_on="g", netplan=netplan), "auto", netplan_file="/etc/netplan/90-x.yaml")
    assert [a["kind"] for a in planned["actions"]] == ["netplan"]
    content = planned["actions"][0]["content"]
    assert content.endswith("network:\n  version: 2\n  ethernets:\n    NM-5a1b:\n      wakeonlan: true\n")
    assert content.startswith("# Managed by dgx_spark.cluster")
    written = {"netdef": "NM-5a1b", "wakeonlan": "true", "file_content": content}
    assert power.plan(facts(wake_on="g", netplan=written), "auto", netplan_file="/etc/netplan/90-x.yaml")[
        "actions"] == []
    # Set by the operator in their own file: nothing written.
    theirs = {"netdef": "NM-5a1b", "wakeonlan": "true", "file_content": None}
    assert power.plan(facts(wake_on="g", netplan=theirs), "auto")["actions"] == []
    # Our file names an old definition: rewritten.
    stale = {"netdef": "lan0", "wakeonlan": "true", "file_content": content}
    assert [a["kind"] for a in power.plan(facts(wake_on="g", netplan=stale), "auto")["actions"]] == ["netplan"]


def test_render_netplan_quotes_odd_ids():
    assert '    "my lan":\n' in power.render_netplan("my lan")


def test_a_nic_without_magic_packet_support_is_refused_or_warned():
    with pytest.raises(power.PowerInputError, match="reports no Wake-on-LAN support"):
        power.plan(facts(supports=None, wake_on=None), "none")
    with pytest.raises(power.PowerInputError, match="supports Wake-on 'pumb', without magic packet"):
        power.plan(facts(supports="pumb"), "none")
    planned = power.plan(facts(supports=None, wake_on=None), "none", require_support=False)
    assert planned["actions"] == [] and planned["persist"] == "none"
    assert "Wake-on-LAN is not enabled on the NIC" in planned["warnings"][0]


def test_diff_shows_before_and_after():
    planned = power.plan(facts(nm=NM), "auto")
    shown = power.diff(facts(nm=NM), planned)
    assert shown["before"] == "wake-on: d\n802-3-ethernet.wake-on-lan (Wired connection 1): default\n"
    assert shown["after"] == "wake-on: g\n802-3-ethernet.wake-on-lan (Wired connection 1): magic\n"


@pytest.mark.parametrize("subnet,broadcast", [("192.168.86.0/24", "192.168.86.255"), ("10.0.0.7/22", "10.0.3.255")])
def test_broadcast_address(subnet, broadcast):
    assert power.broadcast_address(subnet) == broadcast


@pytest.mark.parametrize("subnet", ["not a network", "fd00::/64", None])
def test_broadcast_address_refuses(subnet):
    with pytest.raises(power.PowerInputError):
        power.broadcast_address(subnet)
