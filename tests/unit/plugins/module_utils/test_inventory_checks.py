"""Bad-inventory cases for the preflight check: each mistake must produce its own message."""

import copy

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import limits
from ansible_collections.dgx_spark.cluster.plugins.module_utils.inventory_checks import (
    BOUNDS,
    check_cluster,
    check_inventory,
    role_params,
)

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


def run(nodes=None, settings=None, groups=None, cluster="defer"):
    return check_inventory(nodes or GOOD_NODES, settings or GOOD_SETTINGS, groups or GOOD_GROUPS, cluster)


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


OVERLAP = "kubernetes_pod_cidr (192.168.0.0/16) overlaps spark_lan_subnet (192.168.86.0/24)"


def test_old_toolkit_pod_cidr_overlapping_the_lan_is_a_warning_for_an_existing_cluster():
    problems, warnings = run(settings=with_setting(kubernetes_pod_cidr="192.168.0.0/16"), cluster="exists")
    assert problems == []
    assert len(warnings) == 1
    assert warnings[0].startswith(OVERLAP + ": pods may get addresses that collide with LAN hosts and the MetalLB pool. "
                                  "The existing cluster keeps its pod network")


@pytest.mark.parametrize("cluster, why", [
    ("new", "no cluster exists yet (no /etc/kubernetes/admin.conf on the control plane)"),
    ("unknown", "preflight cannot tell whether a cluster exists (preflight_check_access is false)"),
])
def test_overlapping_pod_cidr_is_refused_for_a_new_cluster_with_what_to_do(cluster, why):
    problems, warnings = run(settings=with_setting(kubernetes_pod_cidr="192.168.0.0/16"), cluster=cluster)
    assert warnings == []
    assert len(problems) == 1
    assert problems[0].startswith(OVERLAP + ": " + why)
    assert "for example 10.244.0.0/16), or set kubernetes_pod_cidr_overlap_accepted: true to build it anyway" in problems[0]


def test_overlapping_pod_cidr_accepted_for_a_new_cluster_is_a_warning():
    settings = with_setting(kubernetes_pod_cidr="192.168.0.0/16", kubernetes_pod_cidr_overlap_accepted=True)
    problems, warnings = run(settings=settings, cluster="new")
    assert problems == []
    assert [w.startswith(OVERLAP) and "kubernetes_pod_cidr_overlap_accepted is true" in w for w in warnings] == [True]


def test_overlap_is_not_judged_before_preflight_knows_whether_a_cluster_exists():
    assert run(settings=with_setting(kubernetes_pod_cidr="192.168.0.0/16"), cluster="defer") == ([], [])


def test_the_suggested_pod_cidr_fits_the_shipped_networks():
    assert run(settings=with_setting(kubernetes_pod_cidr="10.244.0.0/16"), cluster="new") == ([], [])


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
    ("fabric addresses not a list",
     dict(nodes=with_node("spark-ba63", spark_fabric_addresses="10.10.10.2/24")),
     "spark-ba63: spark_fabric_addresses must be a list of addresses with prefix, got '10.10.10.2/24'"),
]


@pytest.mark.parametrize("kwargs, message", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_each_mistake_gives_its_message(kwargs, message):
    problems, _warnings = run(**kwargs)
    assert message in problems, problems


def test_all_problems_are_reported_at_once():
    nodes = with_node("spark-ba63", spark_lan_ip="192.168.86.38", spark_wol_mac="nope")
    problems, _warnings = run(nodes=nodes, settings=with_setting(kubernetes_service_cidr="10.0.0.0/8"))
    assert len(problems) == 4


# ---------------------------------------------------------------------------------------------------------
# check_cluster: every host's own values (as hostvars gives them: group_vars, host_vars and extra vars merged)


def good_hosts():
    hosts = {}
    for name, node in GOOD_NODES.items():
        hosts[name] = copy.deepcopy(GOOD_SETTINGS)
        hosts[name].update(copy.deepcopy(node))
        hosts[name].update(kubernetes_version="1.31", spark_ssh_port=22)
    return hosts


def hosts_with(names=("spark-2959", "spark-ba63"), **values):
    hosts = good_hosts()
    for name in names:
        hosts[name].update(copy.deepcopy(values))
    return hosts


def cluster(hosts=None, groups=None, validated=None, state="defer"):
    return check_cluster(hosts or good_hosts(), groups or GOOD_GROUPS, validated, state)


def test_good_hosts_have_no_problem():
    assert cluster() == ([], [])


def test_numbers_given_as_strings_are_accepted():
    # Extra vars are strings: -e fabric_mtu=9000 -e kubernetes_api_port=6443 -e worker_join_timeout=420
    hosts = hosts_with(fabric_mtu="9000", kubernetes_api_port="6443", worker_join_timeout="420", spark_ssh_port="22",
                       nccl_min_avg_busbw_gbs="20.5")
    assert cluster(hosts) == ([], [])


def test_a_string_mtu_out_of_range_is_still_refused():
    problems, _warnings = cluster(hosts_with(fabric_mtu="100000"))
    assert problems == ["fabric_mtu: '100000' is outside 1280..9216 (bytes)"]


def test_every_host_is_checked_and_settings_must_agree():
    # A worker-only override in host_vars: the first host's value is fine, the worker's is not.
    problems, _warnings = cluster(hosts_with(names=["spark-ba63"], fabric_mtu=100000))
    assert problems == [
        "spark-ba63: fabric_mtu: 100000 is outside 1280..9216 (bytes)",
        "fabric_mtu must be the same on every node but differs: spark-2959 9000, spark-ba63 100000; "
        "set it once in group_vars, not per host",
    ]


def test_a_setting_that_differs_in_range_is_refused_too():
    problems, _warnings = cluster(hosts_with(names=["spark-ba63"], kubernetes_version="1.30"))
    assert problems == ["kubernetes_version must be the same on every node but differs: spark-2959 1.31, "
                        "spark-ba63 1.30; set it once in group_vars, not per host"]


def test_fabric_port_subnets_must_agree_but_candidates_may_differ():
    ports = copy.deepcopy(GOOD_SETTINGS["fabric_ports"])
    ports[0]["candidates"] = ["enp1s0f0np0"]
    assert cluster(hosts_with(names=["spark-ba63"], fabric_ports=ports)) == ([], [])
    ports[1]["subnet"] = "10.10.12.0/24"
    problems, _warnings = cluster(hosts_with(names=["spark-ba63"], fabric_ports=ports))
    assert ("fabric_ports must be the same on every node but differs: spark-2959 subnets 10.10.10.0/24, 10.10.11.0/24, "
            "spark-ba63 subnets 10.10.10.0/24, 10.10.12.0/24; set it once in group_vars, not per host") in problems


def test_a_message_every_host_shares_is_given_once_without_hosts():
    problems, _warnings = cluster(hosts_with(worker_join_timeout=0))
    assert problems == ["worker_join_timeout: 0 is below the lowest allowed value, 1 (seconds)"]


TIMEOUTS = sorted(name for name, bound in BOUNDS.items() if bound[2] == "seconds" and bound[0] == 1)


def test_every_timeout_of_the_roles_has_a_lower_bound():
    assert TIMEOUTS == ["apps_probe_timeout", "apps_ready_timeout", "cni_ready_timeout", "control_plane_init_timeout", "control_plane_ready_timeout",
                        "etcd_backup_restore_api_timeout", "etcd_backup_restore_start_timeout",
                        "etcd_backup_restore_stop_timeout",
                        "gpu_operator_ready_timeout", "gpu_operator_smoke_timeout", "metallb_ready_timeout",
                        "nccl_timeout", "power_suspend_delay", "power_wake_probe_timeout", "power_wake_timeout",
                        "stop_drain_timeout", "storage_ready_timeout", "summary_ready_timeout",
                        "worker_join_timeout", "worker_ready_grace", "worker_ready_timeout", "worker_reset_timeout",
                        "worker_restart_ready_timeout"]
    # The cluster lock: 0 means "refuse at once" (never "no limit"); a lock younger than a minute is never stale.
    assert BOUNDS["cluster_lock_wait_timeout"][:2] == (0, None)
    assert BOUNDS["cluster_lock_stale_after"][:2] == (60, None)


@pytest.mark.parametrize("name,value,lowest", [("cluster_lock_wait_timeout", -1, 0),
                                               ("cluster_lock_stale_after", 59, 60)])
def test_cluster_lock_bounds(name, value, lowest):
    problems, _warnings = cluster(hosts_with(**{name: value}))
    assert problems == ["%s: %r is below the lowest allowed value, %d (seconds)" % (name, value, lowest)]


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [0, -5, "0", "-1"])
def test_zero_and_negative_timeouts_are_refused(name, value):
    problems, _warnings = cluster(hosts_with(**{name: value}))
    assert problems == ["%s: %r is below the lowest allowed value, 1 (seconds)" % (name, value)]


HOST_CASES = [
    ("SSH port out of range", dict(spark_ssh_port=70000), "spark_ssh_port: 70000 is outside 1..65535 (a TCP port)"),
    ("API port out of range", dict(kubernetes_api_port=70000), "kubernetes_api_port: 70000 is outside 1..65535 (a TCP port)"),
    ("API port zero", dict(kubernetes_api_port=0), "kubernetes_api_port: 0 is outside 1..65535 (a TCP port)"),
    ("MTU below the range", dict(fabric_mtu=1000), "fabric_mtu: 1000 is outside 1280..9216 (bytes)"),
    ("MTU a word (no argument spec checked it)", dict(fabric_mtu="jumbo"), "fabric_mtu: 'jumbo' is not a number"),
    ("MTU a boolean", dict(fabric_mtu=True), "fabric_mtu: True is a boolean, not a number"),
    ("minimum link speed zero", dict(fabric_min_speed_mbps=0),
     "fabric_min_speed_mbps: 0 is below the lowest allowed value, 1 (Mb/s)"),
    ("negative NCCL bandwidth gate", dict(nccl_min_avg_busbw_gbs=-1.0),
     "nccl_min_avg_busbw_gbs: -1.0 is below the lowest allowed value, 0 (GB/s)"),
    ("NCCL size above the memory-safe cap", dict(nccl_min_bytes="64M", nccl_max_bytes="16G"),
     "nccl_max_bytes: 16G (16 GiB) is above the memory-safe cap of 8 GiB: on a DGX Spark the GPU shares the node's "
     "unified memory and the 16 GiB nccl-tests run freezes a node (NVIDIA/dgx-spark-playbooks#102); "
     "set nccl_allow_large_sizes: true to run it anyway"),
    ("NCCL size not a size", dict(nccl_max_bytes="lots"),
     "nccl_max_bytes: expected a size such as 67108864, 64M or 1G, got 'lots'"),
    ("NCCL sizes the wrong way round", dict(nccl_min_bytes="1G", nccl_max_bytes="64M"),
     "nccl_min_bytes (1 GiB) is larger than nccl_max_bytes (64 MiB)"),
    ("join token that never expires", dict(worker_token_ttl="0"),
     "worker_token_ttl: '0' is not a duration such as 15m or 1h30m"),
    ("join token of zero minutes", dict(worker_token_ttl="0m"),
     "worker_token_ttl: '0m' is zero (kubeadm reads that as never expires); give a positive duration such as 15m"),
    ("Kubernetes version latest", dict(kubernetes_version="latest"),
     "kubernetes_version: 'latest' is not a Kubernetes version; write a series like \"1.31\" or a release like "
     "\"1.31.4\", quoted"),
    ("Kubernetes version unquoted 1.30 (a float)", dict(kubernetes_version=1.3),
     "kubernetes_version: 1.3 is a number, not a version (YAML reads an unquoted 1.30 as the number 1.3); quote it, "
     "like kubernetes_version: \"1.31\""),
    ("Kubernetes version with an apt revision", dict(kubernetes_version="1.31.4-1.1"),
     "kubernetes_version: '1.31.4-1.1' is not a Kubernetes version; write a series like \"1.31\" or a release like "
     "\"1.31.4\", quoted"),
    ("interface name with a shell metacharacter",
     dict(fabric_ports=[{"subnet": "10.10.10.0/24", "candidates": ["enp1s0f1np1;reboot"]},
                        GOOD_SETTINGS["fabric_ports"][1]]),
     "fabric_ports[0].candidates[0]: 'enp1s0f1np1;reboot' is not a Linux interface name (1 to 15 characters from "
     "A-Z a-z 0-9 _ . -, starting with a letter or digit)"),
    ("interface name too long for Linux",
     dict(fabric_ports=[GOOD_SETTINGS["fabric_ports"][0],
                        {"subnet": "10.10.11.0/24", "candidates": ["enP2p1s0f1np1xyz"]}]),
     "fabric_ports[1].candidates[0]: 'enP2p1s0f1np1xyz' is 16 characters long; Linux interface names have at most 15"),
    ("candidates a string, not a list",
     dict(fabric_ports=[{"subnet": "10.10.10.0/24", "candidates": "enp1s0f1np1"}, GOOD_SETTINGS["fabric_ports"][1]]),
     "fabric_ports[0].candidates: must be a list of interface names, got 'enp1s0f1np1'"),
]


@pytest.mark.parametrize("values, message", [c[1:] for c in HOST_CASES], ids=[c[0] for c in HOST_CASES])
def test_each_bad_value_gives_its_message(values, message):
    problems, _warnings = cluster(hosts_with(**values))
    assert message in problems, problems


def test_large_nccl_sizes_pass_when_allowed():
    assert cluster(hosts_with(nccl_max_bytes="16G", nccl_allow_large_sizes=True)) == ([], [])


@pytest.mark.parametrize("version", ["1.31", "1.31.4", "v1.31.4", "v1.31"])
def test_accepted_kubernetes_versions(version):
    assert cluster(hosts_with(kubernetes_version=version)) == ([], [])


@pytest.mark.parametrize("value, normalised, apt", [
    ("1.31", "1.31", "1.31.*"), ("1.31.4", "1.31.4", "1.31.4-*"), ("v1.31.4", "1.31.4", "1.31.4-*"),
    (" v1.30 ", "1.30", "1.30.*"),
])
def test_kubernetes_version_normal_form_and_apt_pattern(value, normalised, apt):
    assert limits.parse_kubernetes_version(value) == (normalised, None)
    assert limits.kubernetes_apt_version(normalised) == apt


def test_node_names_must_be_kubernetes_node_names():
    hosts = good_hosts()
    hosts["Spark_2959"] = hosts.pop("spark-2959")
    groups = {"spark_cluster": ["Spark_2959", "spark-ba63"], "control_plane": ["Spark_2959"], "workers": ["spark-ba63"]}
    problems, _warnings = cluster(hosts, groups)
    assert problems == ["inventory host 'Spark_2959' is not a valid Kubernetes node name (lower-case letters, digits, "
                        "'-' and '.', starting and ending with a letter or digit, at most 253 characters); rename the "
                        "inventory host, for example to 'spark-2959'"]


@pytest.mark.parametrize("name", ["spark-2959", "a", "node1.lab.example", "0spark"])
def test_valid_node_names(name):
    assert limits.node_name_problem(name) is None


@pytest.mark.parametrize("name", ["Spark-2959", "spark_2959", "-spark", "spark-", "spark..lab", "x" * 254, ""])
def test_invalid_node_names(name):
    assert limits.node_name_problem(name)


@pytest.mark.parametrize("name", ["enp1s0f1np1", "enP2p1s0f1np1", "eth0", "bond0.100", "br-lan", "x" * 15])
def test_valid_interface_names(name):
    assert limits.interface_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "x" * 16, "en p1", "en/p1", "eth0:1", "$(reboot)", "a;b", "-eth0", ".", "..",
                                  "eth0\n", None, 5])
def test_invalid_interface_names(name):
    assert limits.interface_name_problem(name)


def test_one_mtu_range():
    assert (limits.MTU_MIN, limits.MTU_MAX) == (1280, 9216)
    assert BOUNDS["fabric_mtu"][:2] == (limits.MTU_MIN, limits.MTU_MAX)


def test_spec_errors_are_named_by_host_and_not_repeated_by_the_bounds():
    validated = {
        "spark-2959": {"values": {}, "errors": [], "checked": []},
        "spark-ba63": {"values": {"worker_join_timeout": "soon"},
                       "errors": ["argument 'worker_join_timeout' is of type str and we were unable to convert to int"],
                       "checked": ["worker_join_timeout"]},
    }
    problems, _warnings = cluster(validated=validated)
    assert problems == ["spark-ba63: argument 'worker_join_timeout' is of type str and we were unable to convert to int"]


def test_validated_values_replace_the_raw_ones():
    validated = dict((name, {"values": {"fabric_mtu": 9000}, "errors": [], "checked": ["fabric_mtu"]})
                     for name in GOOD_NODES)
    assert cluster(hosts_with(fabric_mtu="9000"), validated=validated) == ([], [])


def test_pod_network_decision_reaches_check_cluster():
    problems, warnings = cluster(hosts_with(kubernetes_pod_cidr="192.168.0.0/16"), state="exists")
    assert problems == [] and len(warnings) == 1
    problems, warnings = cluster(hosts_with(kubernetes_pod_cidr="192.168.0.0/16"), state="new")
    assert len(problems) == 1 and warnings == []
    accepted = hosts_with(kubernetes_pod_cidr="192.168.0.0/16", kubernetes_pod_cidr_overlap_accepted="true")
    problems, warnings = cluster(accepted, state="new")
    assert problems == [] and len(warnings) == 1


def test_unknown_cluster_state_is_a_programming_error():
    with pytest.raises(ValueError):
        cluster(state="maybe")


def test_role_params_merge_defaults_under_the_host_and_leave_templates_out():
    options = {"a": {"type": "int", "required": True}, "b": {"type": "int"}, "c": {"type": "str", "required": True},
               "d": {"type": "str"}}
    defaults = {"b": 2, "c": "{{ other }}", "d": "x"}
    spec, params = role_params(options, defaults, {"a": "1", "d": "y"})
    assert sorted(spec) == ["a", "b", "d"]
    assert params == {"a": "1", "b": 2, "d": "y"}
    spec, params = role_params(options, defaults, {})
    assert "a" in spec and "a" not in params  # a required option with no value is left for the spec to report
