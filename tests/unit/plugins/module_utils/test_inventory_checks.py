"""Bad-inventory cases for the preflight check: each mistake must produce its own message."""

import copy

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils.inventory_checks import check_inventory

GOOD_NODES = {
    "spark-2959": {"spark_lan_ip": "192.168.86.38", "spark_fabric_addresses": ["10.10.10.1/24", "10.10.11.1/24"],
                   "spark_wol_mac": "4c:bb:47:2e:29:59"},
    "spark-ba63": {"spark_lan_ip": "192.168.86.39", "spark_fabric_addresses": ["10.10.10.2/24", "10.10.11.2/24"],
                   "spark_wol_mac": "4c:bb:47:2c:ba:63"},
}
GOOD_SETTINGS = {
    "spark_lan_subnet": "192.168.86.0/24",
    "fabric_ports": [{"subnet": "10.10.10.0/24", "candidates": ["enp1s0f1np1", "enp1s0f0np0"]},
                     {"subnet": "10.10.11.0/24", "candidates": ["enP2p1s0f1np1", "enP2p1s0f0np0"]}],
    "fabric_mtu": 9000,
    "kubernetes_pod_cidr": "172.20.0.0/16",
    "kubernetes_service_cidr": "10.96.0.0/12",
    "kubernetes_api_address": "10.10.10.1",
    "kubernetes_api_port": 6443,
    "metallb_address_pool": ["192.168.86.200-192.168.86.220"],
}
GOOD_GROUPS = {"spark_cluster": ["spark-2959", "spark-ba63"], "control_plane": ["spark-2959"], "workers": ["spark-ba63"]}


def run(nodes=None, settings=None, groups=None):
    return check_inventory(nodes or GOOD_NODES, settings or GOOD_SETTINGS, groups or GOOD_GROUPS)


def with_node(name, **values):
    nodes = copy.deepcopy(GOOD_NODES)
    nodes[name].update(values)
    return nodes


def with_setting(**values):
    settings = copy.deepcopy(GOOD_SETTINGS)
    settings.update(values)
    return settings


def test_good_inventory_has_no_problem():
    assert run() == ([], [])


def test_old_toolkit_pod_cidr_overlapping_the_lan_is_a_warning_not_a_failure():
    problems, warnings = run(settings=with_setting(kubernetes_pod_cidr="192.168.0.0/16"))
    assert problems == []
    assert warnings == ["kubernetes_pod_cidr (192.168.0.0/16) overlaps spark_lan_subnet (192.168.86.0/24): pods may get "
                        "addresses that collide with LAN hosts; exclude the LAN from the CNI's IP pool or pick a pod CIDR "
                        "outside it for a new cluster"]


BAD_CASES = [
    ("two control planes",
     dict(groups=dict(GOOD_GROUPS, control_plane=["spark-2959", "spark-ba63"], workers=[])),
     "group control_plane must hold exactly one node; it holds 2 (spark-2959, spark-ba63)"),
    ("no control plane",
     dict(groups=dict(GOOD_GROUPS, control_plane=[])),
     "group control_plane must hold exactly one node; it holds 0 (none)"),
    ("no worker",
     dict(groups=dict(GOOD_GROUPS, workers=[])),
     "group workers holds no node"),
    ("LAN address outside the LAN",
     dict(nodes=with_node("spark-ba63", spark_lan_ip="192.168.87.39")),
     "spark-ba63: spark_lan_ip 192.168.87.39 is outside spark_lan_subnet 192.168.86.0/24"),
    ("duplicate LAN address",
     dict(nodes=with_node("spark-ba63", spark_lan_ip="192.168.86.38")),
     "192.168.86.38 is used twice: by spark-2959 spark_lan_ip and by spark-ba63 spark_lan_ip"),
    ("duplicate fabric address",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.10.1/24", "10.10.11.2/24"])),
     "10.10.10.1 is used twice: by spark-2959: spark_fabric_addresses[0] and by spark-ba63: spark_fabric_addresses[0]"),
    ("fabric address on the wrong half's subnet",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.11.2/24", "10.10.10.2/24"])),
     "spark-ba63: spark_fabric_addresses[0] 10.10.11.2/24 is not in its half's subnet 10.10.10.0/24"),
    ("fabric address with the old /30 prefix",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.10.2/30", "10.10.11.2/24"])),
     "spark-ba63: spark_fabric_addresses[0] 10.10.10.2/30 is not in its half's subnet 10.10.10.0/24"),
    ("fabric address without prefix",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.10.2", "10.10.11.2/24"])),
     "spark-ba63: spark_fabric_addresses[0]: '10.10.10.2' has no prefix length; write it like 10.10.10.1/24"),
    ("fabric address is the network address",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.10.0/24", "10.10.11.2/24"])),
     "spark-ba63: spark_fabric_addresses[0]: '10.10.10.0/24' is the network or broadcast address of its subnet"),
    ("missing fabric address for the second half",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses=["10.10.10.2/24"])),
     "spark-ba63: spark_fabric_addresses has 1 entries but fabric_ports has 2; give one address per fabric half"),
    ("fabric subnet overlapping the LAN",
     dict(settings=with_setting(fabric_ports=[{"subnet": "192.168.86.0/25", "candidates": ["enp1s0f1np1"]},
                                              GOOD_SETTINGS["fabric_ports"][1]])),
     "spark_lan_subnet (192.168.86.0/24) overlaps fabric_ports[0].subnet (192.168.86.0/25)"),
    ("service CIDR overlapping the fabric",
     dict(settings=with_setting(kubernetes_service_cidr="10.0.0.0/8")),
     "fabric_ports[0].subnet (10.10.10.0/24) overlaps kubernetes_service_cidr (10.0.0.0/8)"),
    ("invalid LAN subnet (host bits set)",
     dict(settings=with_setting(spark_lan_subnet="192.168.86.1/24")),
     "spark_lan_subnet: '192.168.86.1/24' is not a valid network in CIDR form (192.168.86.1/24 has host bits set)"),
    ("API address not on the control plane",
     dict(settings=with_setting(kubernetes_api_address="10.10.10.2")),
     "kubernetes_api_address 10.10.10.2 is not the control plane's first fabric address (10.10.10.1 on spark-2959)"),
    ("MetalLB pool outside the LAN",
     dict(settings=with_setting(metallb_address_pool=["192.168.87.200-192.168.87.220"])),
     "metallb_address_pool[0] '192.168.87.200-192.168.87.220' is not inside spark_lan_subnet 192.168.86.0/24"),
    ("MetalLB pool holding a node address",
     dict(settings=with_setting(metallb_address_pool=["192.168.86.30-192.168.86.40"])),
     "metallb_address_pool[0] '192.168.86.30-192.168.86.40' contains 192.168.86.38, already used by spark-2959 spark_lan_ip"),
    ("bad Wake-on-LAN MAC",
     dict(nodes=with_node("spark-2959", spark_wol_mac="4c:bb:47:2e:29")),
     "spark-2959: spark_wol_mac '4c:bb:47:2e:29' is not a MAC address like 4c:bb:47:2e:29:59"),
    ("MTU Linux will not take",
     dict(settings=with_setting(fabric_mtu=65536)),
     "fabric_mtu: 65536 is outside 1280..9216"),
    ("API port not a port",
     dict(settings=with_setting(kubernetes_api_port=70000)),
     "kubernetes_api_port: 70000 is not a TCP port"),
]


@pytest.mark.parametrize("kwargs, message", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_each_mistake_gives_its_message(kwargs, message):
    problems, _warnings = run(**kwargs)
    assert message in problems, problems


def test_all_problems_are_reported_at_once():
    nodes = with_node("spark-ba63", spark_lan_ip="192.168.86.38", spark_wol_mac="nope")
    problems, _warnings = run(nodes=nodes, settings=with_setting(fabric_mtu=100))
    assert len(problems) == 3
