# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the fabric_ip core with real `ip -j` captures (tests/unit/fixtures/ip, see capture.sh there)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser
import os

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils.fabric import FabricError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
IP_DIR = os.path.join(FIXTURES, "ip")

F1 = "enp1s0f1np1"
F0 = "enp1s0f0np0"
P2F1 = "enP2p1s0f1np1"
P2F0 = "enP2p1s0f0np0"
MGMT = "enP7s7"


def body(path):
    """A fixture without its '#@ ' provenance header."""
    with open(path) as handle:
        return "".join(line for line in handle if not line.startswith("#@"))


def capture(scenario):
    """(interfaces, routes) from the three captures of one scenario."""
    addr = body(os.path.join(IP_DIR, scenario + ".addr.json"))
    link = body(os.path.join(IP_DIR, scenario + ".link.json"))
    route = body(os.path.join(IP_DIR, scenario + ".route.json"))
    return fabric.parse_interfaces(addr, link), fabric.parse_routes(route)


def two_ports():
    """Both halves of the cabled port, each on its own /24 (the collection's default layout)."""
    return fabric.normalize_ports([
        {"candidates": [F1, F0], "address": "10.10.10.1/24"},
        {"candidates": [P2F1, P2F0], "address": "10.10.11.1/24"},
    ])


def plan(scenario, ports=None, mgmt=(MGMT,), state="present", mtu=9000, require_carrier=True, mode="final"):
    interfaces, routes = capture(scenario)
    ports = ports if ports is not None else two_ports()
    if state == "present":
        selections, probe = fabric.choose_interfaces(ports, interfaces, mgmt, require_carrier, mode)
    else:
        selections, probe = fabric.absent_selections(ports, interfaces, mgmt), []
    actions, warnings = fabric.plan_runtime(selections, interfaces, routes, mtu, state, mgmt, probed=probe)
    return selections, actions, warnings


def argvs(actions):
    return [" ".join(a["argv"]) for a in actions]


# ---- every capture parses --------------------------------------------------------------------------------------

# a scenario is a <name>.addr.json / .link.json / .route.json triple; other captures share the directory
SCENARIOS = sorted(f[:-len(".addr.json")] for f in os.listdir(IP_DIR) if f.endswith(".addr.json"))


def test_all_scenarios_captured():
    assert SCENARIOS == ["absent-done", "admin-down", "configured", "dup-on-mgmt", "duplicate", "fresh",
                         "no-carrier", "route-missing", "wrong-half", "wrong-mtu", "wrong-prefix"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_captures_have_provenance_and_parse(scenario):
    for what in ("addr", "link", "route"):
        with open(os.path.join(IP_DIR, "%s.%s.json" % (scenario, what))) as handle:
            first = handle.readline()
        assert first.startswith("#@ captured by dgx_spark.cluster developers on a Debian 12 build machine, "
                                "iproute2 6.1.0, veth in a network namespace, command: ip -j")
    interfaces, routes = capture(scenario)
    assert set([F0, F1, P2F0, P2F1, MGMT, "lo"]) == set(interfaces)
    assert any(r["dst"] == "default" for r in routes)


def test_parse_configured():
    interfaces, routes = capture("configured")
    f1 = interfaces[F1]
    assert f1["mtu"] == 9000
    assert f1["carrier"] is True and f1["admin_up"] is True and f1["operstate"] == "UP"
    assert f1["max_mtu"] == 65535 and f1["min_mtu"] == 68 and f1["kind"] == "veth"
    assert [(a["family"], a["local"], a["prefixlen"]) for a in f1["addrs"]] == [
        ("inet", "10.10.10.1", 24), ("inet6", "fe80::ff:fe00:102", 64)]
    assert interfaces[F0]["carrier"] is False and interfaces[F0]["operstate"] == "DOWN"
    assert interfaces["lo"]["max_mtu"] is None  # 0 in -d output means "not reported"
    assert {"dst": "10.10.10.0/24", "dev": F1, "protocol": "kernel", "scope": "link", "prefsrc": "10.10.10.1",
            "flags": []} in routes


def test_parse_admin_down_has_unknown_carrier():
    interfaces, dummy = capture("admin-down")
    assert interfaces[F1]["admin_up"] is False
    assert interfaces[F1]["carrier"] is None
    assert interfaces[F0]["carrier"] is False


def test_parse_noprefixroute_and_linkdown_route():
    interfaces, dummy = capture("route-missing")
    assert interfaces[F1]["addrs"][0]["noprefixroute"] is True
    dummy, routes = capture("duplicate")
    assert [r["flags"] for r in routes if r["dev"] == F0] == [["linkdown"]]


def test_parse_addr_only_and_empty():
    interfaces = fabric.parse_interfaces(body(os.path.join(IP_DIR, "fresh.addr.json")))
    assert interfaces[F1]["max_mtu"] is None and interfaces[F1]["carrier"] is True
    assert fabric.parse_interfaces("", "") == {}
    assert fabric.parse_routes("\n") == []
    with pytest.raises(FabricError, match="cannot parse ip -j addr show"):
        fabric.parse_interfaces("Error: ...")
    with pytest.raises(FabricError, match="not a JSON list"):
        fabric.parse_routes('{"dst": "default"}')


# ---- input validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, message", [
    ("10.10.10.0/24", "is the network address of 10.10.10.0/24"),
    ("10.10.10.255/24", "is the broadcast address of 10.10.10.0/24"),
    ("10.10.10.4/30", "network address"),
    ("10.10.10.1", "with a prefix length"),
    ("10.10.10.1/33", "not a valid CIDR"),
    ("10.10.10.300/24", "not a valid CIDR"),
    ("10.10.10.1/32", "prefix /32"),
    ("10.10.10.1/0", "prefix /0"),
    ("fd00::1/64", "only IPv4"),
    ("127.0.0.2/8", "loopback"),
    ("224.0.0.5/24", "multicast"),
    ("240.0.0.1/24", "reserved"),
    (None, "with a prefix length"),
])
def test_bad_addresses(address, message):
    with pytest.raises(FabricError, match=message.replace("(", r"\(")):
        fabric.normalize_ports([{"candidates": [F1], "address": address}])


def test_slash31_allows_both_addresses():
    ports = fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.0/31"},
                                    {"candidates": [P2F1], "address": "10.10.11.1/31"}])
    assert [p["address"] for p in ports] == ["10.10.10.0/31", "10.10.11.1/31"]
    assert ports[0]["network"] == "10.10.10.0/31"


def test_address_is_normalised():
    port = fabric.normalize_ports([{"candidates": [F1], "address": " 10.10.10.1/24"}])[0]
    assert (port["address"], port["ip"], port["prefixlen"], port["network"]) == (
        "10.10.10.1/24", "10.10.10.1", 24, "10.10.10.0/24")


@pytest.mark.parametrize("ports, message", [
    ([], "at least one"),
    ([{"candidates": [F1], "address": "10.10.10.1/24"}, {"candidates": [P2F1], "address": "10.10.10.1/16"}],
     r"ports\[1\]: address 10.10.10.1 is already given to ports\[0\]"),
    ([{"candidates": [F1, F1], "address": "10.10.10.1/24"}], "listed twice: enp1s0f1np1"),
    ([{"candidates": [], "address": "10.10.10.1/24"}], "at least one interface"),
    ([{"candidates": ["eth 0"], "address": "10.10.10.1/24"}], "invalid interface name"),
    ([{"candidates": ["enp1s0f1np1np1np1"], "address": "10.10.10.1/24"}], "invalid interface name"),
    ([{"candidates": ["../etc"], "address": "10.10.10.1/24"}], "invalid interface name"),
    (["enp1s0f1np1"], "must be a dict"),
])
def test_bad_ports(ports, message):
    with pytest.raises(FabricError, match=message):
        fabric.normalize_ports(ports)


def test_all_port_errors_reported_at_once():
    with pytest.raises(FabricError) as err:
        fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.0/24"},
                                {"candidates": ["bad name"], "address": "10.10.11.1/24"}])
    assert "ports[0]" in str(err.value) and "ports[1]" in str(err.value)


@pytest.mark.parametrize("mtu", [67, 68, 1279, 9217, 65535, 0, -1, True, "9000"])
def test_bad_mtu(mtu):
    with pytest.raises(FabricError, match="outside 1280..9216"):
        fabric.validate_mtu(mtu)


@pytest.mark.parametrize("mtu", [1280, 1500, 9000, 9216])
def test_good_mtu(mtu):
    assert fabric.validate_mtu(mtu) == mtu


def test_device_max_mtu_checked():
    interfaces, dummy = capture("fresh")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    fabric.check_device_mtu(selections, interfaces, 9216)  # veth max_mtu 65535
    interfaces[F1]["max_mtu"] = 9000  # constructed: a device that stops at 9000
    with pytest.raises(FabricError, match="enp1s0f1np1 accepts at most MTU 9000"):
        fabric.check_device_mtu(selections, interfaces, 9216)


def test_mgmt_conflicts():
    ports = two_ports()
    fabric.check_mgmt_conflicts(ports, "192.168.86.38")
    fabric.check_mgmt_conflicts(ports, None)
    with pytest.raises(FabricError, match="10.10.10.1 is the management address"):
        fabric.check_mgmt_conflicts(ports, "10.10.10.1")
    with pytest.raises(FabricError, match="fabric network 10.10.11.0/24 contains the management address"):
        fabric.check_mgmt_conflicts(ports, "10.10.11.7")
    fabric.check_mgmt_conflicts(ports, "fe80::1")
    with pytest.raises(FabricError, match="not an IP address"):
        fabric.check_mgmt_conflicts(ports, "spark-2959")


def test_shared_network_warning():
    ports = fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/24"},
                                    {"candidates": [P2F1], "address": "10.10.10.3/24"}])
    assert "share network 10.10.10.0/24" in fabric.shared_network_warnings(ports)[0]
    assert fabric.shared_network_warnings(two_ports()) == []


@pytest.mark.parametrize("value, expected", [
    ("192.168.86.10 51234 192.168.86.38 22", "192.168.86.38"),
    ("fe80::1 40000 fe80::2%enP7s7 22", "fe80::2"),
    ("2001:db8::10 40000 2001:db8::38 22", "2001:db8::38"),
    ("", None), (None, None), ("garbage", None), ("1 2 spark-2959 22", None),
])
def test_mgmt_from_ssh_connection(value, expected):
    assert fabric.mgmt_from_ssh_connection(value) == expected


def test_find_address_holders():
    interfaces, dummy = capture("dup-on-mgmt")
    assert fabric.find_address_holders(interfaces, "10.10.10.1") == [MGMT, F1]
    assert fabric.find_address_holders(interfaces, "192.168.86.38") == [MGMT]
    assert fabric.find_address_holders(interfaces, "10.9.9.9") == []


# ---- choosing the interface ------------------------------------------------------------------------------------

def test_choose_first_with_carrier():
    interfaces, dummy = capture("fresh")
    ports = fabric.normalize_ports([{"candidates": [F0, F1, P2F1], "address": "10.10.10.1/24"}])
    selections, probe = fabric.choose_interfaces(ports, interfaces, (MGMT,))
    assert selections[0]["name"] == F1 and probe == []
    assert [(c["name"], c["carrier"]) for c in selections[0]["candidates"]] == [(F0, False), (F1, True), (P2F1, True)]


def test_choose_no_carrier_fails_naming_ports_and_state():
    interfaces, dummy = capture("no-carrier")
    ports = fabric.normalize_ports([{"candidates": [F1, "enp9s0f9np9"], "address": "10.10.10.1/24"},
                                    {"candidates": [P2F1], "address": "10.10.11.1/24"}])
    with pytest.raises(FabricError) as err:
        fabric.choose_interfaces(ports, interfaces, (MGMT,))
    msg = str(err.value)
    assert "10.10.10.1/24: no candidate has carrier" in msg and "10.10.11.1/24: no candidate has carrier" in msg
    assert "enp1s0f1np1 (operstate DOWN, carrier no)" in msg
    assert "enp9s0f9np9 (does not exist)" in msg


def test_choose_no_carrier_allowed():
    interfaces, dummy = capture("no-carrier")
    ports = fabric.normalize_ports([{"candidates": ["enp9s0f9np9", F1, F0], "address": "10.10.10.1/24"}])
    selections, dummy = fabric.choose_interfaces(ports, interfaces, (MGMT,), require_carrier=False)
    assert selections[0]["name"] == F1
    assert "require_carrier=false" in selections[0]["reason"]


def test_choose_unknown_interface():
    interfaces, dummy = capture("fresh")
    ports = fabric.normalize_ports([{"candidates": ["enp9s0f0np0", "enp9s0f1np1"], "address": "10.10.10.1/24"}])
    with pytest.raises(FabricError, match="none of the candidates exist: enp9s0f0np0, enp9s0f1np1"):
        fabric.choose_interfaces(ports, interfaces, (MGMT,), require_carrier=False)


def test_choose_skips_management_interface():
    interfaces, dummy = capture("fresh")
    # the seed toolkit's example config used the LAN NIC enP7s7 as a fabric interface
    ports = fabric.normalize_ports([{"candidates": [MGMT, F1], "address": "10.10.10.1/24"}])
    selections, dummy = fabric.choose_interfaces(ports, interfaces, (MGMT,))
    assert selections[0]["name"] == F1
    assert selections[0]["candidates"][0]["skipped"] == "carries the management address"
    ports = fabric.normalize_ports([{"candidates": [MGMT], "address": "10.10.10.1/24"}])
    with pytest.raises(FabricError, match="every existing candidate is skipped: enP7s7 .*skipped: carries the "
                                          "management address"):
        fabric.choose_interfaces(ports, interfaces, (MGMT,))


def test_choose_overlap_is_an_error():
    interfaces, dummy = capture("fresh")
    ports = fabric.normalize_ports([{"candidates": [F1, P2F1], "address": "10.10.10.1/24"},
                                    {"candidates": [F1, P2F1], "address": "10.10.11.1/24"}])
    with pytest.raises(FabricError, match="ports overlap: enp1s0f1np1 would serve 10.10.10.1/24 and 10.10.11.1/24"):
        fabric.choose_interfaces(ports, interfaces, (MGMT,))
    # overlapping candidate lists are fine as long as the choices differ
    ports = fabric.normalize_ports([{"candidates": [F1, P2F1], "address": "10.10.10.1/24"},
                                    {"candidates": [P2F1, F1], "address": "10.10.11.1/24"}])
    selections, dummy = fabric.choose_interfaces(ports, interfaces, (MGMT,))
    assert [s["name"] for s in selections] == [F1, P2F1]


def test_choose_admin_down_modes():
    interfaces, dummy = capture("admin-down")
    ports = two_ports()
    selections, probe = fabric.choose_interfaces(ports, interfaces, (MGMT,), mode="probe")
    assert probe == [F1, P2F1]
    selections, probe = fabric.choose_interfaces(ports, interfaces, (MGMT,), mode="assume")
    assert [s["name"] for s in selections] == [F1, P2F1] and probe == [F1, P2F1]
    assert "assumed to get carrier" in selections[0]["reason"]
    with pytest.raises(FabricError, match=r"enp1s0f1np1 \(operstate DOWN, carrier unknown \(link down\)\)"):
        fabric.choose_interfaces(ports, interfaces, (MGMT,), mode="final")


def test_probe_settled():
    ports = two_ports()
    interfaces, dummy = capture("admin-down")
    assert not fabric.probe_settled(ports, interfaces, [F1, P2F1])
    interfaces, dummy = capture("fresh")  # what admin-down looks like once the f1 halves are up
    assert fabric.probe_settled(ports, interfaces, [F1, P2F1])
    interfaces, dummy = capture("no-carrier")  # probed, still no carrier: keep waiting (until the timeout)
    assert not fabric.probe_settled(ports, interfaces, [F1])


# ---- runtime plans from real captures --------------------------------------------------------------------------

def test_plan_fresh():
    selections, actions, warnings = plan("fresh")
    assert argvs(actions) == [
        "link set dev enp1s0f1np1 mtu 9000 up",
        "link set dev enP2p1s0f1np1 mtu 9000 up",
        "addr replace 10.10.10.1/24 dev enp1s0f1np1",
        "addr replace 10.10.11.1/24 dev enP2p1s0f1np1",
    ]
    assert [a["text"] for a in actions][0] == "set MTU 9000 (was 1500) on enp1s0f1np1"
    assert warnings == []


def test_plan_configured_is_idempotent():
    selections, actions, warnings = plan("configured")
    assert actions == [] and warnings == []
    assert [s["name"] for s in selections] == [F1, P2F1]


def test_plan_wrong_half_moves_the_address():
    selections, actions, dummy = plan("wrong-half")
    assert argvs(actions) == [
        "link set dev enp1s0f1np1 mtu 9000 up",
        "addr del 10.10.10.1/24 dev enP2p1s0f1np1",
        "addr replace 10.10.10.1/24 dev enp1s0f1np1",
        "addr replace 10.10.11.1/24 dev enP2p1s0f1np1",
    ]
    assert actions[1]["text"] == "remove duplicate 10.10.10.1/24 from enP2p1s0f1np1 (10.10.10.1 belongs on enp1s0f1np1)"


def test_plan_wrong_half_single_port_seed_default():
    # the seed toolkit's default: one address, candidates enp1s0f1np1 then enP2p1s0f1np1
    ports = fabric.normalize_ports([{"candidates": [F1, P2F1], "address": "10.10.10.1/24"}])
    selections, actions, dummy = plan("wrong-half", ports=ports)
    assert selections[0]["name"] == F1
    assert argvs(actions) == [
        "link set dev enp1s0f1np1 mtu 9000 up",
        "addr del 10.10.10.1/24 dev enP2p1s0f1np1",
        "addr replace 10.10.10.1/24 dev enp1s0f1np1",
    ]


def test_plan_duplicate_any_prefix():
    selections, actions, dummy = plan("duplicate")
    assert argvs(actions) == ["addr del 10.10.10.1/16 dev enp1s0f0np0"]


def test_plan_wrong_prefix():
    selections, actions, dummy = plan("wrong-prefix")
    assert argvs(actions) == ["addr del 10.10.10.1/30 dev enp1s0f1np1", "addr replace 10.10.10.1/24 dev enp1s0f1np1"]
    assert "wrong prefix; want 10.10.10.1/24" in actions[0]["text"]


def test_plan_wrong_mtu():
    selections, actions, dummy = plan("wrong-mtu")
    assert argvs(actions) == ["link set dev enp1s0f1np1 mtu 9000 up", "link set dev enP2p1s0f1np1 mtu 9000 up"]
    selections, actions, dummy = plan("wrong-mtu", mtu=1500)
    assert actions == []


def test_plan_route_missing():
    selections, actions, dummy = plan("route-missing")
    assert argvs(actions) == ["route replace 10.10.10.0/24 dev enp1s0f1np1 proto kernel scope link src 10.10.10.1"]


def test_plan_duplicate_on_management_interface_is_left_alone():
    selections, actions, warnings = plan("dup-on-mgmt")
    assert actions == []
    assert warnings == ["duplicate 10.10.10.1/24 left on enP7s7: it carries the management address; "
                        "remove it by hand"]
    selections, actions, warnings = plan("dup-on-mgmt", mgmt=())
    assert argvs(actions) == ["addr del 10.10.10.1/24 dev enP7s7"]


def test_plan_admin_down_check_mode_prediction():
    # check mode: the f1 halves would be brought up to read carrier, then configured
    selections, actions, dummy = plan("admin-down", mode="assume")
    assert argvs(actions) == [
        "link set dev enp1s0f1np1 mtu 9000 up",
        "link set dev enP2p1s0f1np1 mtu 9000 up",
        "addr replace 10.10.10.1/24 dev enp1s0f1np1",
        "addr replace 10.10.11.1/24 dev enP2p1s0f1np1",
    ]
    assert [a["text"] for a in actions[:1]] == ["set MTU 9000 (was 1500) on enp1s0f1np1"]  # probe brings it up
    assert argvs(fabric.probe_actions([F1])) == ["link set dev enp1s0f1np1 up"]


def test_plan_no_carrier_fails_before_any_action():
    with pytest.raises(FabricError, match="no candidate has carrier"):
        plan("no-carrier")


def test_plan_absent():
    selections, actions, warnings = plan("configured", state="absent")
    assert argvs(actions) == ["addr del 10.10.10.1/24 dev enp1s0f1np1", "addr del 10.10.11.1/24 dev enP2p1s0f1np1"]
    assert selections[0]["name"] is None
    selections, actions, warnings = plan("absent-done", state="absent")
    assert actions == [] and warnings == []
    # absent on the wrong half still finds it (any candidate, any prefix)
    ports = fabric.normalize_ports([{"candidates": [F1, P2F1], "address": "10.10.10.1/24"}])
    selections, actions, dummy = plan("wrong-half", ports=ports, state="absent")
    assert argvs(actions) == ["addr del 10.10.10.1/24 dev enP2p1s0f1np1"]


def test_plan_absent_never_touches_management_interface():
    ports = fabric.normalize_ports([{"candidates": [F1, MGMT], "address": "10.10.10.1/24"}])
    selections, actions, warnings = plan("dup-on-mgmt", ports=ports, state="absent")
    assert argvs(actions) == ["addr del 10.10.10.1/24 dev enp1s0f1np1"]
    assert warnings == ["left 10.10.10.1/24 on enP7s7: it carries the management address"]


def test_simulate_then_plan_converges():
    interfaces, routes = capture("wrong-half")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    actions, dummy = fabric.plan_runtime(selections, interfaces, routes, 9000)
    after = fabric.simulate(interfaces, actions)
    assert interfaces[P2F1]["addrs"][0]["local"] == "10.10.10.1"  # the input is not modified
    dummy, configured_routes = capture("configured")
    assert fabric.plan_runtime(selections, after, configured_routes, 9000) == ([], [])


# ---- persistence -----------------------------------------------------------------------------------------------

NETPLAN_TWO = """\
# Managed by dgx_spark.cluster.fabric_ip (Ansible). Local changes are overwritten.
network:
  version: 2
  renderer: networkd
  ethernets:
    enP2p1s0f1np1:
      addresses:
        - 10.10.11.1/24
      mtu: 9000
      dhcp4: false
      dhcp6: false
      link-local: []
    enp1s0f1np1:
      addresses:
        - 10.10.10.1/24
      mtu: 9000
      dhcp4: false
      dhcp6: false
      link-local: []
"""


def test_render_netplan_exact_and_deterministic():
    entries = [(F1, "10.10.10.1/24"), (P2F1, "10.10.11.1/24")]
    assert fabric.render_netplan(entries, 9000) == NETPLAN_TWO
    assert fabric.render_netplan(list(reversed(entries)), 9000) == NETPLAN_TWO
    doc = yaml.safe_load(NETPLAN_TWO)
    assert doc == {"network": {"version": 2, "renderer": "networkd", "ethernets": {
        F1: {"addresses": ["10.10.10.1/24"], "mtu": 9000, "dhcp4": False, "dhcp6": False, "link-local": []},
        P2F1: {"addresses": ["10.10.11.1/24"], "mtu": 9000, "dhcp4": False, "dhcp6": False, "link-local": []},
    }}}


def test_render_netplan_from_selections():
    interfaces, dummy = capture("fresh")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    assert fabric.desired_entries(selections) == [(P2F1, "10.10.11.1/24"), (F1, "10.10.10.1/24")]
    files = fabric.desired_files("netplan", "present", fabric.desired_entries(selections), 9000)
    assert files == {"/etc/netplan/40-dgx-spark-fabric.yaml": NETPLAN_TWO}


def test_render_netplan_quotes_yaml_words():
    text = fabric.render_netplan([("on", "10.10.10.1/24")], 9000)
    assert '    "on":' in text
    assert list(yaml.safe_load(text)["network"]["ethernets"]) == ["on"]


NM_F1 = """\
# Managed by dgx_spark.cluster.fabric_ip (Ansible). Local changes are overwritten.
[connection]
id=dgx-spark-fabric-enp1s0f1np1
uuid=%s
type=ethernet
interface-name=enp1s0f1np1
autoconnect=true
autoconnect-priority=100

[ethernet]
mtu=9000

[ipv4]
method=manual
address1=10.10.10.1/24

[ipv6]
method=disabled
"""


def test_render_nm_keyfile_exact():
    text = fabric.render_nm_keyfile(F1, "10.10.10.1/24", 9000)
    uuid_line = [line for line in text.splitlines() if line.startswith("uuid=")][0]
    assert text == NM_F1 % uuid_line[5:]
    assert text == fabric.render_nm_keyfile(F1, "10.10.10.1/24", 9000)  # stable UUID
    assert uuid_line != [line for line in fabric.render_nm_keyfile(P2F1, "10.10.11.1/24", 9000).splitlines()
                         if line.startswith("uuid=")][0]
    parser = configparser.ConfigParser(comment_prefixes=("#",))
    parser.read_string(text)
    assert parser["ipv4"]["address1"] == "10.10.10.1/24" and parser["ethernet"]["mtu"] == "9000"
    assert fabric.nm_keyfile_path(F1) == "/etc/NetworkManager/system-connections/dgx-spark-fabric-enp1s0f1np1.nmconnection"


def test_desired_files_nm_and_none_and_absent():
    entries = [(F1, "10.10.10.1/24"), (P2F1, "10.10.11.1/24")]
    files = fabric.desired_files("networkmanager", "present", entries, 9000, nm_dir="/nm/")
    assert sorted(files) == ["/nm/dgx-spark-fabric-enP2p1s0f1np1.nmconnection",
                             "/nm/dgx-spark-fabric-enp1s0f1np1.nmconnection"]
    assert fabric.desired_files("none", "present", entries, 9000) == {}
    assert fabric.desired_files("netplan", "absent", entries, 9000) == {}
    assert fabric.is_nm_owned("dgx-spark-fabric-enp1s0f1np1.nmconnection")
    assert not fabric.is_nm_owned("Wired connection 3.nmconnection")


def test_plan_files():
    path = "/etc/netplan/40-dgx-spark-fabric.yaml"
    desired = {path: NETPLAN_TWO}
    assert [a["text"] for a in fabric.plan_files(desired, {})] == [
        "create /etc/netplan/40-dgx-spark-fabric.yaml (mode 0600)"]
    assert fabric.plan_files(desired, {path: (NETPLAN_TWO, 0o100600)}) == []
    assert [a["text"] for a in fabric.plan_files(desired, {path: (NETPLAN_TWO, 0o100644)})] == [
        "set mode 0600 on /etc/netplan/40-dgx-spark-fabric.yaml (was 0644)"]
    rewrite = fabric.plan_files(desired, {path: ("old\n", 0o100600)})
    assert [(a["kind"], a["before"], a["after"]) for a in rewrite] == [("file_write", "old\n", NETPLAN_TWO)]
    assert [a["kind"] for a in fabric.plan_files({}, {path: ("old\n", 0o100600)})] == ["file_remove"]
    assert fabric.plan_files({}, {}) == []


def test_apply_actions():
    path = "/etc/netplan/40-dgx-spark-fabric.yaml"
    writes = fabric.plan_files({path: NETPLAN_TWO}, {})
    assert [a["text"] for a in fabric.apply_actions("netplan", writes, {path: NETPLAN_TWO})] == ["netplan apply"]
    mode_only = fabric.plan_files({path: NETPLAN_TWO}, {path: (NETPLAN_TWO, 0o100644)})
    assert fabric.apply_actions("netplan", mode_only, {path: NETPLAN_TWO}) == []
    nm_new = "/nm/dgx-spark-fabric-enp1s0f1np1.nmconnection"
    nm_old = "/nm/dgx-spark-fabric-enp1s0f0np0.nmconnection"
    nm = fabric.plan_files({nm_new: "x"}, {nm_old: ("y", 0o100600)})
    assert [a["text"] for a in fabric.apply_actions("networkmanager", nm, {nm_new: "x"})] == [
        "nmcli connection reload", "nmcli connection up dgx-spark-fabric-enp1s0f1np1"]


# ---- reporting -------------------------------------------------------------------------------------------------

def test_build_diff_check_mode_prediction():
    interfaces, routes = capture("wrong-half")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    actions, dummy = fabric.plan_runtime(selections, interfaces, routes, 9000)
    files = fabric.plan_files({"/p.yaml": NETPLAN_TWO}, {})
    diff = fabric.build_diff(interfaces, selections, actions, files)
    assert [d["before_header"] for d in diff] == ["IPv4 addresses (before)", "MTU and link (before)", "/p.yaml (before)"]
    assert diff[0]["before"] == "enP2p1s0f1np1: 10.10.10.1/24\nenp1s0f1np1: (no IPv4 address)\n"
    assert diff[0]["after"] == "enP2p1s0f1np1: 10.10.11.1/24\nenp1s0f1np1: 10.10.10.1/24\n"
    assert diff[1]["before"] == "enP2p1s0f1np1: mtu 9000, up\nenp1s0f1np1: mtu 1500, up\n"
    assert diff[1]["after"] == "enP2p1s0f1np1: mtu 9000, up\nenp1s0f1np1: mtu 9000, up\n"
    assert diff[2]["before"] == "" and diff[2]["after"] == NETPLAN_TWO


def test_port_report():
    interfaces, dummy = capture("configured")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    report = fabric.port_report(selections, interfaces, {F1: 200000, P2F1: None})
    assert report[0] == {
        "name": F1, "address": "10.10.10.1/24", "mtu": 9000, "carrier": True, "operstate": "UP",
        "speed_mbps": 200000, "reason": "first candidate with carrier",
        "candidates": [
            {"name": F1, "exists": True, "operstate": "UP", "carrier": True, "mtu": 9000, "skipped": None},
            {"name": F0, "exists": True, "operstate": "DOWN", "carrier": False, "mtu": 1500, "skipped": None},
        ],
    }
    assert report[1]["speed_mbps"] is None


@pytest.mark.parametrize("text, expected", [
    ("200000\n", 200000), ("10000", 10000), ("-1\n", None), ("4294967295\n", None), ("", None), (None, None),
    ("x", None),
])
def test_parse_sysfs_speed(text, expected):
    assert fabric.parse_sysfs_speed(text) == expected


@pytest.mark.parametrize("name, expected", [
    ("spark-grep-speed-200G.txt", 200000),
    ("spark-grep-speed-100G-switch-autoneg.txt", 100000),
])
def test_parse_ethtool_speed_real(name, expected):
    path = os.path.join(FIXTURES, "ethtool", name)
    if not os.path.exists(path):
        pytest.skip("shared ethtool fixture %s not copied into tests/unit/fixtures/ethtool" % name)
    assert fabric.parse_ethtool_speed(body(path)) == expected


def test_parse_ethtool_speed_unknown():
    # constructed: the lines ethtool prints for a port without link
    assert fabric.parse_ethtool_speed("Settings for enP2p1s0f0np0:\n\tSpeed: Unknown!\n\tDuplex: Unknown! (255)\n") is None
    assert fabric.parse_ethtool_speed("") is None


# ---- peer checks (ping) ----------------------------------------------------------------------------------------

PING_DIR = os.path.join(FIXTURES, "ping")
PING_ARGV_P2F1 = ["-c", "1", "-W", "2", "-M", "do", "-s", "8972", "-I", P2F1, "10.10.11.2"]


def ping_capture(name):
    """(rc, stdout, stderr) of one real ping capture (tests/unit/fixtures/ping, see capture.sh there)."""
    with open(os.path.join(PING_DIR, name + ".txt")) as handle:
        lines = handle.readlines()
    rc = int([line for line in lines if line.startswith("#@ rc:")][0].split(":", 1)[1])
    split = lines.index("#@ stderr:\n")
    out = "".join(line for line in lines[:split] if not line.startswith("#@"))
    return rc, out, "".join(lines[split + 1:])


def peer_ports(peer0="10.10.10.2", peer1="10.10.11.2"):
    return fabric.normalize_ports([
        {"candidates": [F1, F0], "address": "10.10.10.1/24", "peer": peer0},
        {"candidates": [P2F1, P2F0], "address": "10.10.11.1/24", "peer": peer1},
    ])


def peer_plan(scenario, ports=None, **kwargs):
    interfaces, dummy = capture(scenario)
    mode = "assume" if kwargs.get("check_mode") else "final"
    selections, dummy = fabric.choose_interfaces(ports or peer_ports(), interfaces, (MGMT,), True, mode)
    return fabric.plan_peer_checks(selections, interfaces, 9000, **kwargs)


def test_ping_captures_have_provenance():
    names = sorted(f[:-4] for f in os.listdir(PING_DIR) if f.endswith(".txt"))
    assert names == ["local-mtu-1500", "no-cap-net-raw", "no-carrier", "ok", "peer-mtu-1500", "peer-no-address"]
    for name in names:
        with open(os.path.join(PING_DIR, name + ".txt")) as handle:
            head = handle.read()
        assert head.startswith("#@ captured by") and "#@ rc:" in head and "#@ stderr:\n" in head


def test_ping_argv_exact():
    assert fabric.ping_argv(P2F1, "10.10.11.2", 9000) == PING_ARGV_P2F1
    assert fabric.ping_argv(F1, "10.10.10.2", 1500)[7] == "1472"


def test_peer_is_optional_and_normalised():
    assert [p["peer"] for p in two_ports()] == [None, None]
    ports = fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/24", "peer": " 10.10.10.2 "}])
    assert ports[0]["peer"] == "10.10.10.2"
    slash31 = fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.0/31", "peer": "10.10.10.1"}])
    assert slash31[0]["peer"] == "10.10.10.1"


@pytest.mark.parametrize("peer, message", [
    ("10.10.10.2/24", "must be an address without a prefix length, e.g. 10.10.10.2"),
    ("10.10.10.300", "is not a valid IPv4 address"),
    ("peer-node", "is not a valid IPv4 address"),
    ("", "must be an IPv4 address"),
    ("fd00::2", "only IPv4 peers"),
    ("10.10.11.2", "peer 10.10.11.2 is outside 10.10.10.0/24, the network of 10.10.10.1/24"),
    ("10.10.10.1", "peer 10.10.10.1 is this port's own address"),
    ("10.10.10.0", "peer 10.10.10.0 is the network address of 10.10.10.0/24"),
    ("10.10.10.255", "peer 10.10.10.255 is the broadcast address of 10.10.10.0/24"),
])
def test_bad_peer(peer, message):
    with pytest.raises(FabricError) as err:
        fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/24", "peer": peer}])
    assert str(err.value).startswith("ports[0]: ")
    assert message in str(err.value)


def test_peer_equal_to_another_ports_address_is_refused():
    with pytest.raises(FabricError) as err:
        fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/16", "peer": "10.10.11.1"},
                                {"candidates": [P2F1], "address": "10.10.11.1/16", "peer": "10.10.10.9"}])
    assert str(err.value) == ("ports[0]: peer 10.10.11.1 is the address of ports[1] on this node; give the other "
                              "node's address on this half")


def test_peer_errors_reported_with_the_other_errors():
    with pytest.raises(FabricError) as err:
        fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/24", "peer": "10.10.12.2"},
                                {"candidates": ["bad name"], "address": "10.10.11.1/24"}])
    assert "ports[0]: peer 10.10.12.2 is outside" in str(err.value) and "ports[1]: invalid" in str(err.value)


@pytest.mark.parametrize("value", [-1, True, "3", None])
def test_bad_peer_retries(value):
    with pytest.raises(FabricError, match="peer_retries .* must be 0 or more"):
        fabric.validate_peer_retries(value)


def test_plan_peer_checks_real_run():
    checks = peer_plan("configured")
    assert [(c["name"], c["peer"], c["mtu"], c["todo"], c["skipped"], c["ok"]) for c in checks] == [
        (F1, "10.10.10.2", 9000, True, None, None), (P2F1, "10.10.11.2", 9000, True, None, None)]
    assert checks[1]["argv"] == PING_ARGV_P2F1


def test_plan_peer_checks_only_ports_with_peer():
    ports = fabric.normalize_ports([{"candidates": [F1, F0], "address": "10.10.10.1/24"},
                                    {"candidates": [P2F1, P2F0], "address": "10.10.11.1/24", "peer": "10.10.11.2"}])
    assert [c["name"] for c in peer_plan("configured", ports)] == [P2F1]
    assert peer_plan("configured", two_ports()) == []


def test_plan_peer_checks_absent_has_none():
    interfaces, dummy = capture("configured")
    assert fabric.plan_peer_checks(fabric.absent_selections(peer_ports(), interfaces, (MGMT,)), interfaces, 9000) == []


def test_plan_peer_checks_verify_false():
    checks = peer_plan("configured", verify=False)
    assert [(c["todo"], c["skipped"]) for c in checks] == [(False, "verify_peers=false")] * 2


def test_plan_peer_checks_check_mode_runs_where_address_and_mtu_are_in_place():
    checks = peer_plan("configured", check_mode=True)
    assert [(c["todo"], c["skipped"]) for c in checks] == [(True, None), (True, None)]


@pytest.mark.parametrize("scenario, reasons", [
    ("fresh", [
        "check mode: 10.10.10.1/24 is not on enp1s0f1np1 yet and enp1s0f1np1 has MTU 1500, not 9000 yet; the real "
        "run checks after configuring it",
        "check mode: 10.10.11.1/24 is not on enP2p1s0f1np1 yet and enP2p1s0f1np1 has MTU 1500, not 9000 yet; the "
        "real run checks after configuring it"]),
    ("wrong-prefix", [
        "check mode: 10.10.10.1/24 is not on enp1s0f1np1 yet; the real run checks after configuring it", None]),
    ("wrong-mtu", [
        "check mode: enp1s0f1np1 has MTU 1500, not 9000 yet; the real run checks after configuring it",
        "check mode: enP2p1s0f1np1 has MTU 1500, not 9000 yet; the real run checks after configuring it"]),
    ("admin-down", [
        "check mode: 10.10.10.1/24 is not on enp1s0f1np1 yet and enp1s0f1np1 has MTU 1500, not 9000 yet and "
        "enp1s0f1np1 is administratively down; the real run checks after configuring it",
        "check mode: 10.10.11.1/24 is not on enP2p1s0f1np1 yet and enP2p1s0f1np1 has MTU 1500, not 9000 yet and "
        "enP2p1s0f1np1 is administratively down; the real run checks after configuring it"]),
])
def test_plan_peer_checks_check_mode_skips_until_configured(scenario, reasons):
    checks = peer_plan(scenario, check_mode=True)
    assert [c["skipped"] for c in checks] == reasons
    assert [c["todo"] for c in checks] == [r is None for r in reasons]


def test_plan_peer_checks_check_mode_admin_down_with_address_and_mtu():
    interfaces, dummy = capture("configured")
    interfaces[F1]["admin_up"] = False  # constructed: configured, then `ip link set dev enp1s0f1np1 down`
    selections, dummy = fabric.choose_interfaces(peer_ports(), interfaces, (MGMT,), True, "assume")
    checks = fabric.plan_peer_checks(selections, interfaces, 9000, check_mode=True)
    assert checks[0]["skipped"] == ("check mode: enp1s0f1np1 is administratively down; the real run checks after "
                                    "configuring it")


def test_plan_peer_checks_no_carrier_allowed_is_skipped():
    interfaces, dummy = capture("no-carrier")
    selections, dummy = fabric.choose_interfaces(peer_ports(), interfaces, (MGMT,), False, "final")
    checks = fabric.plan_peer_checks(selections, interfaces, 9000, require_carrier=False)
    assert [c["skipped"] for c in checks] == ["enp1s0f1np1 has no carrier (require_carrier=false)",
                                              "enP2p1s0f1np1 has no carrier (require_carrier=false)"]


def test_plan_peer_checks_peer_held_by_this_node_fails_without_ping():
    interfaces, dummy = capture("configured")
    # constructed: the peer's address was put on this node's other half by mistake
    interfaces[P2F0]["addrs"].append({"family": "inet", "local": "10.10.11.2", "prefixlen": 24,
                                      "noprefixroute": False})
    selections, dummy = fabric.choose_interfaces(peer_ports(), interfaces, (MGMT,))
    checks = fabric.plan_peer_checks(selections, interfaces, 9000)
    assert checks[0]["todo"] is True
    assert (checks[1]["todo"], checks[1]["ok"], checks[1]["summary"]) == (
        False, False, "10.10.11.2 is an address of this node (on enP2p1s0f0np0), not the peer's")


@pytest.mark.parametrize("name, ok, summary, retry", [
    ("ok", True, None, False),
    ("peer-mtu-1500", False, "1 packets transmitted, 0 received, 100% packet loss", True),
    ("peer-no-address", False, "1 packets transmitted, 0 received, 100% packet loss", True),
    ("no-carrier", False, "1 packets transmitted, 0 received, 100% packet loss", True),
    ("local-mtu-1500", False, "1 packets transmitted, 0 received, +1 errors, 100% packet loss "
                              "(ping: local error: message too long, mtu=1500)", True),
    ("no-cap-net-raw", False, "/tmp/ping-without-cap: => missing cap_net_raw+p capability or setuid?; ping needs "
                              "root or CAP_NET_RAW (run the module with become)", False),
])
def test_record_ping_real_captures(name, ok, summary, retry):
    rc, out, err = ping_capture(name)
    check = fabric.plan_peer_checks(*_configured_selections())[1]
    fabric.record_ping(check, rc, out, err)
    assert (check["ok"], check["summary"], check["todo"], check["attempts"]) == (ok, summary, retry, 1)


def _configured_selections():
    interfaces, dummy = capture("configured")
    selections, dummy = fabric.choose_interfaces(peer_ports(), interfaces, (MGMT,))
    return selections, interfaces, 9000


def test_record_ping_output_tail_and_attempts():
    check = fabric.plan_peer_checks(*_configured_selections())[1]
    fabric.record_ping(check, *ping_capture("peer-no-address"))
    rc, out, err = ping_capture("ok")
    fabric.record_ping(check, rc, out, err)
    assert check["attempts"] == 2 and check["ok"] is True and check["summary"] is None and check["todo"] is False
    assert check["output_tail"] == "\n".join([line for line in out.splitlines() if line][-4:])
    assert check["output_tail"].startswith("8980 bytes from 10.10.11.2: icmp_seq=1 ttl=64")
    fabric.record_ping(check, *ping_capture("local-mtu-1500"))
    assert check["output_tail"] == ("PING 10.10.11.2 (10.10.11.2) from 10.10.11.1 enP2p1s0f1np1: 8972(9000) bytes of "
                                    "data.\n--- 10.10.11.2 ping statistics ---\n1 packets transmitted, 0 received, "
                                    "+1 errors, 100% packet loss, time 0ms\nping: local error: message too long, "
                                    "mtu=1500")


@pytest.mark.parametrize("rc, out, err, summary", [
    (124, "", "", "ping exited with rc 124 and printed nothing (timed out)"),
    (2, "", "ping: SO_BINDTODEVICE enP2p1s0f0np0: No such device\n",
     "ping: SO_BINDTODEVICE enP2p1s0f0np0: No such device"),  # constructed from an interactive run, see capture.sh
    (1, "1 packets transmitted, 0 received, 100% packet loss, time 1001.5ms\n", "",
     "1 packets transmitted, 0 received, 100% packet loss"),
])
def test_ping_summary_edges(rc, out, err, summary):
    assert fabric.ping_summary(rc, out, err) == summary


def test_peer_report_keys():
    check = fabric.plan_peer_checks(*_configured_selections())[1]
    fabric.record_ping(check, *ping_capture("peer-mtu-1500"))
    assert fabric.peer_report([check]) == [{
        "name": P2F1, "peer": "10.10.11.2", "mtu": 9000, "ok": False, "attempts": 1,
        "output_tail": ("PING 10.10.11.2 (10.10.11.2) from 10.10.11.1 enP2p1s0f1np1: 8972(9000) bytes of data.\n"
                        "--- 10.10.11.2 ping statistics ---\n"
                        "1 packets transmitted, 0 received, 100% packet loss, time 0ms"),
        "summary": "1 packets transmitted, 0 received, 100% packet loss", "skipped": None}]


def test_peer_failure_message_one_and_several():
    checks = fabric.plan_peer_checks(*_configured_selections())
    assert fabric.peer_failure_message(checks, 9000) is None
    fabric.record_ping(checks[0], *ping_capture("ok"))
    fabric.record_ping(checks[1], *ping_capture("peer-mtu-1500"))
    assert fabric.peer_failure_message(checks, 9000) == (
        "no 9000-byte path to the peer: enP2p1s0f1np1 -> 10.10.11.2 (MTU 9000): 1 packets transmitted, 0 received, "
        "100% packet loss; check the cable, and the peer's address and MTU on that half")
    fabric.record_ping(checks[0], *ping_capture("local-mtu-1500"))
    assert fabric.peer_failure_message(checks, 9000) == (
        "no 9000-byte path to the peer: enp1s0f1np1 -> 10.10.10.2 (MTU 9000): 1 packets transmitted, 0 received, "
        "+1 errors, 100% packet loss (ping: local error: message too long, mtu=1500); enP2p1s0f1np1 -> 10.10.11.2 "
        "(MTU 9000): 1 packets transmitted, 0 received, 100% packet loss; check the cable, and the peer's address "
        "and MTU on each of those halves")


# ---- interface names and MTU follow limits.py (one rule for preflight and the module) ---------------------------

@pytest.mark.parametrize("name, message", [
    ("eth0;reboot", "is not a Linux interface name"),
    ("$(id)", "is not a Linux interface name"),
    ("-eth0", "is not a Linux interface name"),
    ("enp1s0f1np1np1np1", "17 characters long"),
])
def test_interface_names_refused_through_limits(name, message):
    with pytest.raises(FabricError, match=r"ports\[0\]: invalid interface name\(s\): .*" + message):
        fabric.normalize_ports([{"candidates": [name], "address": "10.10.10.1/24"}])


def test_interface_name_starting_with_a_digit_is_accepted_and_quoted_in_netplan():
    port = fabric.normalize_ports([{"candidates": ["0eth"], "address": "10.10.10.1/24"}])[0]
    assert port["candidates"] == ["0eth"]
    text = fabric.render_netplan([("0eth", "10.10.10.1/24"), ("1e3", "10.10.11.1/24")], 9000)
    assert '    "0eth":' in text and '    "1e3":' in text
    assert sorted(yaml.safe_load(text)["network"]["ethernets"]) == ["0eth", "1e3"]


# ---- the run's decisions ---------------------------------------------------------------------------------------

NM = "/etc/NetworkManager/system-connections"


def test_persist_command_and_messages():
    assert [fabric.persist_command(p) for p in ("netplan", "networkmanager", "none")] == ["netplan", "nmcli", None]
    assert fabric.missing_persist_command_message("networkmanager").startswith(
        "persist=networkmanager needs the nmcli command, which is not installed")
    assert "/usr/bin, /bin, /usr/sbin, /sbin" in fabric.missing_ping_message()


def test_needs_ping():
    with_peer = fabric.normalize_ports([{"candidates": [F1], "address": "10.10.10.1/24", "peer": "10.10.10.2"}])
    without = two_ports()
    assert fabric.needs_ping(True, "present", with_peer) is True
    assert fabric.needs_ping(False, "present", with_peer) is False
    assert fabric.needs_ping(True, "absent", with_peer) is False
    assert fabric.needs_ping(True, "present", without) is False


def test_resolve_mgmt_option_ssh_connection_and_unknown():
    interfaces, dummy = capture("configured")
    mgmt, warnings = fabric.resolve_mgmt("192.168.86.38", "192.168.86.10 5000 10.9.9.9 22", interfaces)
    assert mgmt == {"address": "192.168.86.38", "source": "option", "interfaces": [MGMT]} and warnings == []
    mgmt, warnings = fabric.resolve_mgmt(None, "192.168.86.10 5000 192.168.86.38 22", interfaces)
    assert mgmt == {"address": "192.168.86.38", "source": "SSH_CONNECTION", "interfaces": [MGMT]}
    mgmt, warnings = fabric.resolve_mgmt(None, None, interfaces)
    assert mgmt == {"address": None, "source": None, "interfaces": []}
    assert warnings == ["management address unknown (no mgmt_address, no SSH_CONNECTION): no interface is "
                        "protected and the apply step is only checked through mgmt_check_host"]
    mgmt, warnings = fabric.resolve_mgmt("192.0.2.7", None, interfaces)
    assert mgmt["interfaces"] == [] and warnings == [
        "management address 192.0.2.7 is not on any local interface; nothing to protect"]


def test_mgmt_lost():
    interfaces, dummy = capture("configured")
    mgmt = {"address": "192.168.86.38", "source": "option", "interfaces": [MGMT]}
    assert fabric.mgmt_lost(interfaces, mgmt) is None
    assert fabric.mgmt_lost({}, mgmt) == "management address 192.168.86.38 is no longer on enP7s7"


def test_no_carrier_warnings():
    interfaces, dummy = capture("no-carrier")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,), require_carrier=False)
    assert fabric.no_carrier_warnings(selections, interfaces) == [
        "%s has no carrier; %s configured anyway (require_carrier=false)" % (sel["name"], sel["port"]["address"])
        for sel in selections]
    interfaces, dummy = capture("configured")
    selections, dummy = fabric.choose_interfaces(two_ports(), interfaces, (MGMT,))
    assert fabric.no_carrier_warnings(selections, interfaces) == []


def test_has_address():
    interfaces, dummy = capture("configured")
    assert fabric.has_address(interfaces, F1, "10.10.10.1/24") is True
    assert fabric.has_address(interfaces, F1, "10.10.10.1/16") is False
    assert fabric.has_address(interfaces, "missing0", "10.10.10.1/24") is False


def test_owned_paths():
    assert fabric.owned_paths("netplan", "/etc/netplan/x.yaml", NM, []) == ["/etc/netplan/x.yaml"]
    listing = ["dgx-spark-fabric-%s.nmconnection" % F1, "other.nmconnection", "dgx-spark-fabric-x.txt"]
    assert fabric.owned_paths("networkmanager", "/ignored", NM, listing) == [
        NM + "/dgx-spark-fabric-%s.nmconnection" % F1]
    assert fabric.owned_paths("networkmanager", "/ignored", NM + "/", listing[:1]) == [
        NM + "/dgx-spark-fabric-%s.nmconnection" % F1]
    assert fabric.owned_paths("none", "/etc/netplan/x.yaml", NM, listing) == []


def test_apply_argv():
    assert fabric.apply_argv("/usr/sbin/netplan", {"command": "netplan_apply"}) == ["/usr/sbin/netplan", "apply"]
    assert fabric.apply_argv("nmcli", {"command": "nm_reload"}) == ["nmcli", "connection", "reload"]
    assert fabric.apply_argv("nmcli", {"command": "nm_up", "conn_id": "dgx-spark-fabric-x"}) == [
        "nmcli", "--wait", "60", "connection", "up", "id", "dgx-spark-fabric-x"]


def test_rollback_actions_and_message():
    current = {"/a": ("old a\n", 0o100600), "/c": ("same\n", 0o100644)}
    file_actions = fabric.plan_files({"/a": "new a\n", "/b": "new b\n"}, current)
    file_actions.append(fabric.make_action("file_mode", "set mode", path="/m", before="x", after="x"))
    restore = fabric.rollback_actions(file_actions)
    assert [(a["kind"], a["text"], a["path"], a["before"], a["after"]) for a in restore] == [
        ("file_write", "restored previous /a", "/a", "new a\n", "old a\n"),
        ("file_remove", "removed new /b", "/b", "new b\n", None),
        ("file_write", "restored previous /c", "/c", None, "same\n"),
    ]
    assert fabric.restored_files(restore) == {"/a": "old a\n", "/c": "same\n"}
    assert fabric.rollback_message("x is gone", file_actions[:1], restore[:1], None, True) == (
        "x is gone after applying /a; rolled back (restored previous /a; applied again); management reachable "
        "again. Runtime changes already made on fabric interfaces were kept.")
    assert fabric.rollback_message("x is gone", file_actions[:1], [], "netplan apply failed (rc 1): no", False) == (
        "x is gone after applying /a; rolled back (nothing to restore; applied again, but that failed: netplan "
        "apply failed (rc 1): no); management STILL NOT reachable. Runtime changes already made on fabric "
        "interfaces were kept.")


def test_not_converged_message():
    actions = [fabric.make_action("addr_add", "add 10.10.10.1/24 to x"), fabric.make_action("link", "bring up x")]
    assert fabric.not_converged_message(actions) == (
        "runtime state does not converge; still to do: add 10.10.10.1/24 to x; bring up x")


def test_persist_file_report():
    desired = {NM + "/b.nmconnection": "", NM + "/a.nmconnection": ""}
    assert fabric.persist_file_report("netplan", "/etc/netplan/f.yaml", {}) == ("/etc/netplan/f.yaml", [])
    assert fabric.persist_file_report("networkmanager", "/etc/netplan/f.yaml", desired) == (
        NM + "/a.nmconnection", [NM + "/a.nmconnection", NM + "/b.nmconnection"])
    assert fabric.persist_file_report("none", "/etc/netplan/f.yaml", {}) == (None, [])
