"""The inventory_problems filter with the real role specs and defaults: hostvars as plain dicts."""

import copy
import glob
import os

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.filter import inventory_problems as plugin
from ansible_collections.dgx_spark.cluster.plugins.filter.kubernetes_version import kubernetes_version

INVENTORY = "inventory"


def inventory_hostvars():
    """hostvars as the shipped inventory gives them (group_vars/all/*.yml under each host's host_vars)."""
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", INVENTORY)
    group = {}
    for path in sorted(glob.glob(os.path.join(root, "group_vars", "all", "*.yml"))):
        with open(path) as handle:
            group.update(yaml.safe_load(handle) or {})
    hostvars = {}
    for name in ("spark-2959", "spark-ba63"):
        with open(os.path.join(root, "host_vars", name + ".yml")) as handle:
            hostvars[name] = dict(group, **(yaml.safe_load(handle) or {}))
        # What Ansible templates on access; the filter sees the result.
        hostvars[name]["ansible_user"] = hostvars[name]["spark_ssh_user"] = "spark"
        hostvars[name]["kubernetes_api_lan_url"] = "https://192.168.86.38:6443"
        hostvars[name]["kubernetes_controller_kubeconfig"] = "/home/spark/.kube/dgx-spark.conf"
    return hostvars


GROUPS = {"spark_cluster": ["spark-2959", "spark-ba63"], "control_plane": ["spark-2959"], "workers": ["spark-ba63"]}
START_ROLES = ["node_prep", "fabric", "control_plane", "worker"]


def check(hostvars=None, roles=None, cluster="defer", **everywhere):
    roles = START_ROLES if roles is None else roles
    hostvars = copy.deepcopy(hostvars or inventory_hostvars())
    for host in hostvars.values():
        host.update(everywhere)
    return plugin.inventory_problems(hostvars, GROUPS, roles=roles, cluster=cluster)


def test_the_shipped_inventory_passes_for_every_playbook():
    for roles in (START_ROLES, ["fabric"], ["fabric", "nccl"], []):
        assert check(roles=roles) == {"problems": [], "warnings": []}


def test_extra_vars_are_strings_and_are_accepted():
    assert check(fabric_mtu="9000", kubernetes_api_port="6443", worker_join_timeout="420",
                 control_plane_init_timeout="600")["problems"] == []


def test_a_later_roles_variable_is_checked_in_preflight():
    problems = check(worker_join_timeout=0)["problems"]
    assert problems == ["worker_join_timeout: 0 is below the lowest allowed value, 1 (seconds)"]


def test_a_bad_number_in_the_inventory_is_refused_whichever_playbook_runs():
    # The inventory is shared by every playbook: its bounds are checked even where the role does not run; the
    # argument spec (required values, types, choices) only for the roles the playbook runs.
    assert check(roles=["fabric"], worker_join_timeout=0)["problems"] == [
        "worker_join_timeout: 0 is below the lowest allowed value, 1 (seconds)"]
    assert check(roles=["fabric"], worker_role_label=5)["problems"] == []


def test_a_later_roles_type_error_is_reported_once_by_the_spec():
    problems = check(worker_join_timeout="soon")["problems"]
    assert len(problems) == 1
    assert problems[0].startswith("argument 'worker_join_timeout' is of type str and we were unable to convert to int")


def test_a_later_roles_choices_are_checked():
    problems = check(fabric_persist="ifupdown")["problems"]
    assert problems == ["value of fabric_persist must be one of: netplan, networkmanager, none, got: ifupdown"]


def test_a_worker_only_override_is_caught():
    hostvars = inventory_hostvars()
    hostvars["spark-ba63"]["worker_join_timeout"] = -1
    assert check(hostvars)["problems"] == ["spark-ba63: worker_join_timeout: -1 is below the lowest allowed value, 1 (seconds)"]


def test_nccl_sizes_and_gate_in_preflight_of_validate_fabric():
    roles = ["fabric", "nccl"]
    assert check(roles=roles, nccl_max_bytes="16G")["problems"][0].startswith("nccl_max_bytes: 16G (16 GiB) is above")
    assert check(roles=roles, nccl_max_bytes="16G", nccl_allow_large_sizes="true")["problems"] == []
    assert check(roles=roles, nccl_min_avg_busbw_gbs="-2")["problems"] == [
        "nccl_min_avg_busbw_gbs: -2.0 is below the lowest allowed value, 0 (GB/s)"]


def test_unknown_role_is_refused():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="'nope' is not a role of dgx_spark.cluster"):
        check(roles=["nope"])
    assert check(roles=["dgx_spark.cluster.worker"])["problems"] == []


def test_existing_cluster_overlap_is_an_ansible_warning(monkeypatch):
    shown = []
    monkeypatch.setattr(plugin.display, "warning", shown.append)
    result = check(roles=[], cluster="exists")
    assert result["problems"] == []
    assert shown == result["warnings"] and len(shown) == 1
    assert shown[0].startswith("kubernetes_pod_cidr (192.168.0.0/16) overlaps spark_lan_subnet (192.168.86.0/24)")


def test_new_cluster_with_the_shipped_pod_cidr_is_refused_unless_accepted():
    assert len(check(roles=[], cluster="new")["problems"]) == 1
    assert check(roles=[], cluster="new", kubernetes_pod_cidr_overlap_accepted="yes")["problems"] == []


@pytest.mark.parametrize("value, expected", [
    ("1.31", {"version": "1.31", "series": "1.31", "patch": None, "apt": "1.31.*"}),
    ("v1.31.4", {"version": "1.31.4", "series": "1.31", "patch": "1.31.4", "apt": "1.31.4-*"}),
])
def test_kubernetes_version_filter(value, expected):
    assert kubernetes_version(value) == expected


@pytest.mark.parametrize("value", ["latest", 1.3, "1.31.x"])
def test_kubernetes_version_filter_refuses(value):
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="kubernetes_version"):
        kubernetes_version(value)
