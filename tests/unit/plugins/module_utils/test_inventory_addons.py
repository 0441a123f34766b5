"""The add-on roles' values in the preflight check (inventory_checks._addon_problems through check_cluster, and the
Longhorn replica count against the cluster's size): each mistake gives its own message.

Values reach the checks as the inventory_problems filter passes them: ``hosts`` holds each host's raw inventory
values, ``validated[host]["values"]`` the roles' options (the role's defaults under the host's values, templates left
out, as role_params gives them).
"""

import copy

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils.inventory_checks import (
    CHART_VERSION_KEYS,
    GPU_OPERATOR_MIN_VERSION,
    check_cluster,
    role_params,
)

# The two-node lab inventory of test_inventory_checks.py.
GOOD_NODES = {
    "spark-2959": {"spark_lan_ip": "192.168.86.38", "spark_fabric_addresses": ["10.10.10.1/24", "10.10.11.1/24"],
                   "spark_wol_mac": "4c:bb:47:2e:29:59"},
    "spark-ba63": {"spark_lan_ip": "192.168.86.39", "spark_fabric_addresses": ["10.10.10.2/24", "10.10.11.2/24"],
                   "spark_wol_mac": "4c:bb:47:2c:ba:63"},
}
GOOD_SETTINGS = {
    "spark_lan_subnet": "192.168.86.0/24",
    "spark_lan_interface": "enP7s7",
    "fabric_ports": [{"subnet": "10.10.10.0/24", "candidates": ["enp1s0f1np1", "enp1s0f0np0"]},
                     {"subnet": "10.10.11.0/24", "candidates": ["enP2p1s0f1np1", "enP2p1s0f0np0"]}],
    "fabric_mtu": 9000,
    "kubernetes_pod_cidr": "172.20.0.0/16",
    "kubernetes_service_cidr": "10.96.0.0/12",
    "kubernetes_api_address": "10.10.10.1",
    "kubernetes_api_port": 6443,
    "metallb_address_pool": ["192.168.86.200-192.168.86.220"],
}
GOOD_GROUPS = {"spark_cluster": ["spark-2959", "spark-ba63"], "control_plane": ["spark-2959"],
               "workers": ["spark-ba63"]}
BOTH = ("spark-2959", "spark-ba63")

# The add-on roles' defaults (roles/{cni,metallb,storage,gpu_operator}/defaults/main.yml), the checked part.
ROLE_DEFAULTS = {
    "cni_enabled": True,
    "cni_chart_version": "v3.30.3",
    "cni_supported_kubernetes_series": ["1.30", "1.31", "1.32", "1.33"],
    "metallb_enabled": True,
    "metallb_chart_version": "0.15.2",
    "metallb_address_pool": [],
    "metallb_l2_interfaces": "{{ [spark_lan_interface] }}",
    "storage_enabled": True,
    "storage_longhorn_enabled": True,
    "storage_longhorn_chart_version": "1.9.1",
    "storage_longhorn_replica_count": 2,
    "storage_default_class": "longhorn",
    "storage_nfs_enabled": False,
    "storage_nfs_exports": [
        {"path": "/nfs/shared", "clients": "{{ fabric_ports[0].subnet }}",
         "options": "rw,sync,no_subtree_check,no_root_squash"},
        {"path": "/nfs/imagegen", "clients": "{{ fabric_ports[0].subnet }}",
         "options": "rw,sync,no_subtree_check,no_root_squash"},
    ],
    "storage_nfs_chart_version": "4.11.0",
    "storage_nfs_share": "/nfs/shared",
    "gpu_operator_enabled": True,
    "gpu_operator_chart_version": "v25.10.0",
}
OPTIONS = dict((name, {}) for name in ROLE_DEFAULTS)


def good_hosts():
    hosts = {}
    for name, node in GOOD_NODES.items():
        hosts[name] = copy.deepcopy(GOOD_SETTINGS)
        hosts[name].update(copy.deepcopy(node))
        hosts[name].update(kubernetes_version="1.31", spark_ssh_port=22)
    return hosts


def hosts_with(names=BOTH, **values):
    hosts = good_hosts()
    for name in names:
        hosts[name].update(copy.deepcopy(values))
    return hosts


def validated_for(hosts):
    """What the filter hands check_cluster: the roles' defaults under each host's own values (role_params)."""
    validated = {}
    for name, raw in hosts.items():
        _spec, params = role_params(OPTIONS, ROLE_DEFAULTS, raw)
        validated[name] = {"values": params, "errors": [], "checked": sorted(params)}
    return validated


def check(names=BOTH, **values):
    """check_cluster on the lab inventory with ``values`` set in the inventory of ``names``."""
    hosts = hosts_with(names, **values)
    return check_cluster(hosts, GOOD_GROUPS, validated_for(hosts), "defer")


def problems_of(names=BOTH, **values):
    problems, warnings = check(names, **values)
    assert warnings == []
    return problems


def test_the_role_defaults_on_the_lab_inventory_have_no_problem():
    assert check() == ([], [])


def test_without_the_add_on_roles_nothing_of_theirs_is_checked():
    # The preflight of a run without add-on roles: no validated values, the inventory holds none of their variables.
    assert check_cluster(good_hosts(), GOOD_GROUPS, None, "defer") == ([], [])


def test_the_role_defaults_reach_the_check_through_validated_values():
    hosts = good_hosts()
    validated = validated_for(hosts)
    assert validated["spark-2959"]["values"]["metallb_chart_version"] == "0.15.2"
    assert "metallb_l2_interfaces" not in validated["spark-2959"]["values"]  # a template: checked when it runs
    assert validated["spark-2959"]["values"]["metallb_address_pool"] == ["192.168.86.200-192.168.86.220"]
    for name in validated:
        validated[name]["values"]["metallb_chart_version"] = "latest"
    assert check_cluster(hosts, GOOD_GROUPS, validated, "defer")[0] == [
        "metallb_chart_version is 'latest', which is not a version: pin one chart version (for example 0.15.2)"]


# ---------------------------------------------------------------------------------------------------------------
# chart versions
# ---------------------------------------------------------------------------------------------------------------

def test_every_add_on_chart_version_is_checked():
    assert CHART_VERSION_KEYS == ("cni_chart_version", "metallb_chart_version", "storage_longhorn_chart_version",
                                  "storage_nfs_chart_version", "gpu_operator_chart_version")


@pytest.mark.parametrize("name", ["cni_chart_version", "metallb_chart_version", "storage_longhorn_chart_version",
                                  "storage_nfs_chart_version", "gpu_operator_chart_version"])
@pytest.mark.parametrize("value, message", [
    ("latest", "%s is 'latest', which is not a version: pin one chart version (for example 0.15.2)"),
    ("", "%s is empty: pin one chart version (for example 0.15.2)"),
    (None, "%s is empty: pin one chart version (for example 0.15.2)"),
    ("^0.15", "%s '^0.15' is not one pinned version (a range, a wildcard or a partial version lets the chart move "
              "under the cluster): pin one release such as 1.2.3"),
    ("0.15.x", "%s '0.15.x' is not one pinned version (a range, a wildcard or a partial version lets the chart move "
               "under the cluster): pin one release such as 1.2.3"),
    ("~> 1.9", "%s '~> 1.9' is not one pinned version (a range, a wildcard or a partial version lets the chart move "
               "under the cluster): pin one release such as 1.2.3"),
])
def test_a_chart_version_that_is_not_pinned_is_refused(name, value, message):
    assert problems_of(**{name: value}) == [message % name]


def test_a_chart_version_refused_on_one_host_names_the_host():
    assert problems_of(names=["spark-ba63"], metallb_chart_version="latest") == [
        "spark-ba63: metallb_chart_version is 'latest', which is not a version: pin one chart version "
        "(for example 0.15.2)"]


def test_all_bad_chart_versions_are_reported_at_once():
    assert problems_of(cni_chart_version="latest", metallb_chart_version="") == [
        "cni_chart_version is 'latest', which is not a version: pin one chart version (for example 0.15.2)",
        "metallb_chart_version is empty: pin one chart version (for example 0.15.2)",
    ]


def test_a_templated_chart_version_is_not_checked_here():
    hosts = hosts_with(metallb_chart_version="{{ lab_metallb_version }}")
    validated = validated_for(hosts)
    assert "metallb_chart_version" not in validated["spark-2959"]["values"]
    assert check_cluster(hosts, GOOD_GROUPS, validated, "defer") == ([], [])


@pytest.mark.parametrize("value", ["0.15.2", "v0.15.2", "0.16.0-rc.1"])
def test_pinned_chart_versions_are_accepted(value):
    assert check(metallb_chart_version=value) == ([], [])


GPU_TOO_OLD = ("gpu_operator_chart_version %s is below v25.10.0: earlier GPU Operators do not support the DGX Spark's "
               "GB10 (their device plugin fails with \"error getting device memory: Not Supported\", "
               "NVIDIA/gpu-operator#1794); pin v25.10.0 or newer")


@pytest.mark.parametrize("value", ["v25.3.0", "25.3.0", "v24.9.2", "v25.3.4", "v25.9.99"])
def test_a_gpu_operator_before_gb10_support_is_refused(value):
    assert problems_of(gpu_operator_chart_version=value) == [GPU_TOO_OLD % value]


def test_the_gpu_operator_floor():
    assert GPU_OPERATOR_MIN_VERSION == (25, 10, 0)


@pytest.mark.parametrize("value", ["v25.10.0", "25.10.0", "v25.10.1", "v26.3.3", "v26.0.0-rc.1"])
def test_gpu_operators_with_gb10_support_are_accepted(value):
    assert check(gpu_operator_chart_version=value) == ([], [])


def test_an_unpinned_gpu_operator_gets_the_pin_message_only():
    assert problems_of(gpu_operator_chart_version="latest") == [
        "gpu_operator_chart_version is 'latest', which is not a version: pin one chart version (for example 0.15.2)"]


# ---------------------------------------------------------------------------------------------------------------
# MetalLB
# ---------------------------------------------------------------------------------------------------------------

def test_metallb_on_a_fabric_interface_is_refused():
    assert problems_of(metallb_l2_interfaces=["enP7s7", "enp1s0f1np1"]) == [
        "metallb_l2_interfaces: enp1s0f1np1 is not the LAN interface (spark_lan_interface: enP7s7); service "
        "addresses must never be announced on the fabric or another network"]


def test_several_interfaces_other_than_the_lan_are_named():
    assert problems_of(metallb_l2_interfaces=["enp1s0f1np1", "enP2p1s0f1np1"]) == [
        "metallb_l2_interfaces: enp1s0f1np1, enP2p1s0f1np1 are not the LAN interface (spark_lan_interface: enP7s7); "
        "service addresses must never be announced on the fabric or another network"]


def test_metallb_on_a_fabric_interface_of_one_host_names_the_host():
    assert problems_of(names=["spark-ba63"], metallb_l2_interfaces=["enp1s0f1np1"]) == [
        "spark-ba63: metallb_l2_interfaces: enp1s0f1np1 is not the LAN interface (spark_lan_interface: enP7s7); "
        "service addresses must never be announced on the fabric or another network"]


def test_metallb_on_the_lan_interface_is_accepted():
    assert check(metallb_l2_interfaces=["enP7s7"]) == ([], [])


def test_no_metallb_interface_at_all_is_refused():
    assert problems_of(metallb_l2_interfaces=[]) == [
        "metallb_l2_interfaces is empty: MetalLB would announce on every interface, the fabric included; list the "
        "LAN interface (enP7s7)"]


@pytest.mark.parametrize("disabled", [False, "false", "no"])
def test_metallb_interfaces_are_not_judged_when_metallb_is_off(disabled):
    assert check(metallb_enabled=disabled, metallb_l2_interfaces=["enp1s0f1np1"]) == ([], [])


def test_metallb_interfaces_are_not_judged_against_a_templated_lan_interface():
    hosts = hosts_with(metallb_l2_interfaces=["enp1s0f1np1"],
                       spark_lan_interface="{{ ansible_default_ipv4.interface }}")
    assert check_cluster(hosts, GOOD_GROUPS, validated_for(hosts), "defer") == ([], [])


def test_an_empty_metallb_pool_is_refused():
    assert problems_of(metallb_address_pool=[]) == [
        "metallb_address_pool is empty: give the LAN range LoadBalancer addresses come from (for example "
        "192.168.86.200-192.168.86.220), or set metallb_enabled: false"]


def test_the_role_default_empty_pool_is_refused_when_the_inventory_gives_none():
    hosts = good_hosts()
    for name in hosts:
        del hosts[name]["metallb_address_pool"]
    assert check_cluster(hosts, GOOD_GROUPS, validated_for(hosts), "defer")[0] == [
        "metallb_address_pool is empty: give the LAN range LoadBalancer addresses come from (for example "
        "192.168.86.200-192.168.86.220), or set metallb_enabled: false"]


def test_an_empty_metallb_pool_is_accepted_without_metallb():
    assert check(metallb_address_pool=[], metallb_enabled=False) == ([], [])


# ---------------------------------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------------------------------

NFS_EXPORTS = [{"path": "/nfs/shared", "clients": "10.10.10.0/24", "options": "rw,sync,no_subtree_check"},
               {"path": "/nfs/imagegen", "clients": "10.10.10.0/24"}]


def test_nfs_exports_with_absolute_paths_are_accepted():
    assert check(storage_nfs_enabled=True, storage_nfs_exports=NFS_EXPORTS) == ([], [])


def test_an_nfs_export_with_a_relative_path_is_refused():
    exports = copy.deepcopy(NFS_EXPORTS)
    exports[0]["path"] = "nfs/shared"
    assert problems_of(storage_nfs_enabled=True, storage_nfs_exports=exports) == [
        "storage_nfs_exports[0].path: 'nfs/shared' is not an absolute path"]


def test_every_bad_nfs_export_is_named_by_its_index():
    exports = [{"path": "/nfs/shared"}, {"clients": "10.10.10.0/24"}, "/nfs/imagegen", {"path": "{{ share }}"},
               {"path": "relative"}]
    assert problems_of(storage_nfs_enabled=True, storage_nfs_exports=exports) == [
        "storage_nfs_exports[1].path: None is not an absolute path",
        "storage_nfs_exports[2].path: None is not an absolute path",
        "storage_nfs_exports[3].path: '{{ share }}' is not an absolute path",
        "storage_nfs_exports[4].path: 'relative' is not an absolute path",
    ]


def test_a_relative_nfs_share_is_refused():
    assert problems_of(storage_nfs_enabled=True, storage_nfs_share="nfs/shared") == [
        "storage_nfs_share: 'nfs/shared' is not an absolute path"]


def test_nfs_paths_are_not_judged_without_nfs():
    exports = [{"path": "nfs/shared", "clients": "10.10.10.0/24"}]
    assert check(storage_nfs_enabled=False, storage_nfs_exports=exports, storage_nfs_share="nfs/shared") == ([], [])


REPLICAS = ("storage_longhorn_replica_count: %s replicas on 2 node(s): Longhorn places each replica of a volume on a "
            "different node, so volumes could never be healthy; use at most 2")


def test_more_longhorn_replicas_than_nodes_is_refused():
    assert problems_of(storage_longhorn_replica_count=3) == [REPLICAS % 3]


def test_more_longhorn_replicas_given_as_an_extra_var_string_is_refused():
    assert problems_of(storage_longhorn_replica_count="3") == [REPLICAS % 3]


@pytest.mark.parametrize("count", [1, 2, "2"])
def test_longhorn_replicas_up_to_the_node_count_are_accepted(count):
    assert check(storage_longhorn_replica_count=count) == ([], [])


@pytest.mark.parametrize("values", [{"storage_enabled": False}, {"storage_longhorn_enabled": False,
                                                                 "storage_default_class": "none"}])
def test_longhorn_replicas_are_not_judged_without_longhorn(values):
    assert check(storage_longhorn_replica_count=3, **values) == ([], [])


def test_longhorn_replicas_are_judged_on_the_control_planes_values():
    assert problems_of(names=["spark-2959"], storage_longhorn_replica_count=3) == [REPLICAS % 3]


def test_longhorn_replicas_below_one_are_refused_by_the_bounds():
    assert problems_of(storage_longhorn_replica_count=0) == [
        "storage_longhorn_replica_count: 0 is below the lowest allowed value, 1 (replicas)"]


def test_a_three_node_cluster_takes_three_replicas():
    hosts = hosts_with(storage_longhorn_replica_count=3)
    hosts["spark-c0de"] = copy.deepcopy(hosts["spark-ba63"])
    hosts["spark-c0de"].update(spark_lan_ip="192.168.86.40", spark_fabric_addresses=["10.10.10.3/24", "10.10.11.3/24"],
                               spark_wol_mac="4c:bb:47:2c:c0:de")
    groups = {"spark_cluster": ["spark-2959", "spark-ba63", "spark-c0de"], "control_plane": ["spark-2959"],
              "workers": ["spark-ba63", "spark-c0de"]}
    assert check_cluster(hosts, groups, validated_for(hosts), "defer") == ([], [])
    for name in hosts:
        hosts[name]["storage_longhorn_replica_count"] = 4
    assert check_cluster(hosts, groups, validated_for(hosts), "defer")[0] == [
        "storage_longhorn_replica_count: 4 replicas on 3 node(s): Longhorn places each replica of a volume on a "
        "different node, so volumes could never be healthy; use at most 3"]


def test_nfs_as_default_class_without_nfs_is_refused():
    assert problems_of(storage_default_class="nfs-csi", storage_nfs_enabled=False) == [
        "storage_default_class is nfs-csi but storage_nfs_enabled is false: enable NFS or choose longhorn or none"]


def test_nfs_as_default_class_with_nfs_is_accepted():
    assert check(storage_default_class="nfs-csi", storage_nfs_enabled=True, storage_nfs_exports=NFS_EXPORTS) == (
        [], [])


def test_longhorn_as_default_class_without_longhorn_is_refused():
    assert problems_of(storage_default_class="longhorn", storage_longhorn_enabled=False) == [
        "storage_default_class is longhorn but storage_longhorn_enabled is false: enable Longhorn or choose nfs-csi "
        "or none"]


def test_no_default_class_needs_neither():
    assert check(storage_default_class="none", storage_longhorn_enabled=False) == ([], [])


# ---------------------------------------------------------------------------------------------------------------
# Calico and the Kubernetes version
# ---------------------------------------------------------------------------------------------------------------

def test_a_kubernetes_version_the_pinned_calico_does_not_support_is_refused():
    assert problems_of(kubernetes_version="1.34") == [
        "kubernetes_version 1.34: the pinned Calico (cni_chart_version v3.30.3) supports Kubernetes 1.30, 1.31, "
        "1.32, 1.33 only; pin a Calico release that supports 1.34 and list it in cni_supported_kubernetes_series"]


def test_a_patch_release_is_judged_by_its_series():
    assert problems_of(kubernetes_version="v1.29.4") == [
        "kubernetes_version v1.29.4: the pinned Calico (cni_chart_version v3.30.3) supports Kubernetes 1.30, 1.31, "
        "1.32, 1.33 only; pin a Calico release that supports 1.29 and list it in cni_supported_kubernetes_series"]


@pytest.mark.parametrize("version", ["1.31", "1.30", "1.33", "1.31.4", "v1.32.1"])
def test_a_kubernetes_version_calico_supports_is_accepted(version):
    assert check(kubernetes_version=version) == ([], [])


def test_the_series_list_of_the_inventory_decides():
    assert check(kubernetes_version="1.34", cni_chart_version="v3.31.0",
                 cni_supported_kubernetes_series=["1.32", "1.33", "1.34"]) == ([], [])


def test_the_calico_series_is_not_judged_without_calico():
    assert check(kubernetes_version="1.34", cni_enabled=False) == ([], [])


def test_an_unreadable_kubernetes_version_gets_its_own_message_only():
    assert problems_of(kubernetes_version="latest") == [
        "kubernetes_version: 'latest' is not a Kubernetes version; write a series like \"1.31\" or a release like "
        "\"1.31.4\", quoted"]


def test_every_add_on_problem_is_reported_at_once():
    exports = [{"path": "nfs/shared"}]
    assert problems_of(metallb_chart_version="latest", gpu_operator_chart_version="v25.3.0",
                       metallb_l2_interfaces=["enp1s0f1np1"], storage_nfs_enabled=True, storage_nfs_exports=exports,
                       kubernetes_version="1.34", storage_longhorn_replica_count=3) == [
        "metallb_chart_version is 'latest', which is not a version: pin one chart version (for example 0.15.2)",
        GPU_TOO_OLD % "v25.3.0",
        "metallb_l2_interfaces: enp1s0f1np1 is not the LAN interface (spark_lan_interface: enP7s7); service "
        "addresses must never be announced on the fabric or another network",
        "storage_nfs_exports[0].path: 'nfs/shared' is not an absolute path",
        "kubernetes_version 1.34: the pinned Calico (cni_chart_version v3.30.3) supports Kubernetes 1.30, 1.31, "
        "1.32, 1.33 only; pin a Calico release that supports 1.34 and list it in cni_supported_kubernetes_series",
        REPLICAS % 3,
    ]
