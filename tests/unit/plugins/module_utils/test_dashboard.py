"""The Kubernetes Dashboard's pure core: its variables checked, the plan of a run, the tokens, the summary."""

import base64
import copy
import os

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import dashboard as core

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _yaml(*path):
    with open(os.path.join(REPO, *path)) as handle:
        return yaml.safe_load(handle)


DEFAULTS = _yaml("roles", "dashboard", "defaults", "main.yml")
POOL = _yaml("inventory", "group_vars", "all", "metallb.yml")["metallb_address_pool"]
APPS = _yaml("inventory", "group_vars", "all", "apps.yml")


def settings(**changes):
    """The role's defaults as the role renders them (token files under a results directory), the shipped pool and
    apps catalogue, with ``changes``."""
    values = dict((name, value) for name, value in DEFAULTS.items() if "{{" not in str(value))
    values.update(dashboard_viewer_token_file="/home/op/dgx-spark-results/dashboard-viewer.token",
                  dashboard_admin_token_file="/home/op/dgx-spark-results/dashboard-admin.token",
                  metallb_address_pool=POOL, apps_catalogue=APPS["apps_catalogue"], apps_overrides={})
    values.update(changes)
    return values


def test_the_shipped_defaults_pass():
    assert core.check_settings(settings()) == []


@pytest.mark.parametrize("changes, expected", [
    ({"dashboard_chart_version": "latest"}, "dashboard_chart_version is 'latest', which is not a version"),
    ({"dashboard_chart_version": ""}, "dashboard_chart_version is empty"),
    ({"dashboard_chart_version": "^7.14"}, "dashboard_chart_version '^7.14' is not one pinned version"),
    ({"dashboard_chart_version": "7.x"}, "dashboard_chart_version '7.x' is not one pinned version"),
    ({"dashboard_address": "192.168.86.99"}, "dashboard_address: 192.168.86.99 is outside the MetalLB pool "
                                             "(metallb_address_pool: 192.168.86.200-192.168.86.220)"),
    ({"dashboard_address": "dashboard.lan"}, "dashboard_address: 'dashboard.lan' is not an IP address"),
    ({"metallb_address_pool": []}, "dashboard_address 192.168.86.205 needs a MetalLB pool"),
    ({"dashboard_address": "192.168.86.201"}, "dashboard_address: 192.168.86.201 is already the address of the app "
                                              "ollama (apps_catalogue.ollama.address)"),
    ({"dashboard_viewer_token_file": "dashboard.token"}, "dashboard_viewer_token_file: 'dashboard.token' is not an "
                                                         "absolute path"),
    ({"dashboard_admin_token_file": "~/admin.token"}, "dashboard_admin_token_file: '~/admin.token' is not an absolute "
                                                      "path"),
    ({"dashboard_viewer_token_file": ""}, "dashboard_viewer_token_file is empty"),
    ({"dashboard_admin_token_file": "/tmp/tokens/"}, "dashboard_admin_token_file: '/tmp/tokens/' names a directory"),
    ({"dashboard_admin_token_file": "/home/op/dgx-spark-results/./dashboard-viewer.token"},
     "dashboard_viewer_token_file and dashboard_admin_token_file are the same file"),
    ({"dashboard_state": "running"}, "dashboard_state: 'running' is not one of started, stopped, absent"),
    ({"dashboard_run_state": "up"}, "dashboard_run_state: 'up' is not one of inventory, started, stopped, absent"),
    ({"dashboard_namespace": "Dashboard"}, "dashboard_namespace: 'Dashboard' is not a valid Kubernetes name"),
    ({"dashboard_ready_timeout": 0}, "dashboard_ready_timeout: 0 is not a number of seconds of at least 1"),
    ({"dashboard_chart_ref": ""}, "dashboard_chart_ref is empty"),
], ids=lambda value: str(value)[:40])
def test_each_bad_value_is_refused_naming_the_variable(changes, expected):
    problems = core.check_settings(settings(**changes))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_disabled_app_does_not_hold_its_address_and_an_override_can_move_one_onto_it():
    catalogue = copy.deepcopy(APPS["apps_catalogue"])
    catalogue["ollama"]["enabled"] = False
    assert core.check_settings(settings(dashboard_address="192.168.86.201", apps_catalogue=catalogue)) == []
    moved = {"openwebui": {"address": "192.168.86.205"}}
    assert "the app openwebui" in core.check_settings(settings(apps_overrides=moved))[0]


def test_a_dashboard_being_removed_needs_no_address_and_templates_are_left_to_the_run():
    assert core.check_settings(settings(dashboard_state="absent", dashboard_address="10.0.0.1")) == []
    assert core.check_settings(settings(dashboard_run_state="absent", dashboard_address="10.0.0.1")) == []
    assert core.check_settings(settings(dashboard_run_state="started", dashboard_state="absent",
                                        dashboard_address="10.0.0.1")) != []
    # Preflight sees derived defaults unrendered, or not at all.
    assert core.check_settings({"dashboard_viewer_token_file": "{{ dashboard_results_dir }}/v.token"}) == []
    assert core.check_settings({"dashboard_address": "192.168.86.99"}) == []  # no pool known: nothing to judge


def test_the_run_state_overrides_the_inventory_unless_it_is_inventory():
    assert core.effective_state("started", "inventory") == "started"
    assert core.effective_state("started", None) == "started"
    assert core.effective_state("started", "") == "started"
    assert core.effective_state("started", "absent") == "absent"
    assert core.effective_state("absent", "stopped") == "stopped"


def plan(state="started", **kwargs):
    kwargs.setdefault("address", "192.168.86.205")
    kwargs.setdefault("viewer_file", "/r/dashboard-viewer.token")
    kwargs.setdefault("admin_file", "/r/dashboard-admin.token")
    return core.plan(state, **kwargs)


def kinds(objects):
    return [(obj["kind"], obj["metadata"]["name"] if "metadata" in obj else obj["name"]) for obj in objects]


def test_started_is_read_only_by_default_and_removes_any_admin_account():
    result = plan()
    assert result["state"] == "started" and result["url"] == "https://192.168.86.205/"
    assert kinds(result["objects"]) == [("ServiceAccount", "dashboard-viewer"), ("Secret", "dashboard-viewer-token"),
                                        ("ClusterRoleBinding", "dashboard-viewer")]
    binding = result["objects"][2]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dashboard-viewer",
                                    "namespace": "kubernetes-dashboard"}]
    secret = result["objects"][1]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "dashboard-viewer"}
    assert "data" not in secret and "stringData" not in secret  # the API fills the token
    # Nothing grants cluster-admin, and nothing the viewer holds can read Secrets.
    assert all(obj.get("roleRef", {}).get("name") != "cluster-admin" for obj in result["objects"])
    # The admin's binding goes first, then its token Secret (revoking the token), then the account.
    assert result["remove"] == [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "name": "dashboard-admin"},
        {"apiVersion": "v1", "kind": "Secret", "name": "dashboard-admin-token", "namespace": "kubernetes-dashboard"},
        {"apiVersion": "v1", "kind": "ServiceAccount", "name": "dashboard-admin", "namespace": "kubernetes-dashboard"}]
    assert result["tokens"] == [{"who": "viewer", "secret": "dashboard-viewer-token",
                                 "file": "/r/dashboard-viewer.token"}]
    assert result["remove_files"] == ["/r/dashboard-admin.token"]


def test_the_admin_token_only_on_opt_in():
    result = plan(admin=True)
    assert ("ClusterRoleBinding", "dashboard-admin") in kinds(result["objects"])
    admin = [obj for obj in result["objects"] if obj["metadata"]["name"] == "dashboard-admin"
             and obj["kind"] == "ClusterRoleBinding"][0]
    assert admin["roleRef"]["name"] == "cluster-admin"
    assert result["remove"] == [] and result["remove_files"] == []
    assert [token["file"] for token in result["tokens"]] == ["/r/dashboard-viewer.token", "/r/dashboard-admin.token"]
    assert plan(admin="false")["remove_files"] == ["/r/dashboard-admin.token"]  # a string from -e is not an opt-in


def test_the_release_values_put_the_gateway_on_the_address_and_the_inventory_merges_over_them():
    values = plan(extra_values={"kong": {"proxy": {"annotations": {"x": "y"}}},
                                "app": {"settings": {"global": {"clusterName": "spark"}}}})["release_values"]
    assert values == {"kong": {"proxy": {"type": "LoadBalancer",
                                         "annotations": {"metallb.io/loadBalancerIPs": "192.168.86.205", "x": "y"}}},
                      "app": {"settings": {"global": {"clusterName": "spark"}}}}


def test_started_waits_for_every_deployment_of_the_chart():
    result = plan()
    assert [entry["name"] for entry in result["ready"]] == [
        "kubernetes-dashboard-api", "kubernetes-dashboard-auth", "kubernetes-dashboard-web",
        "kubernetes-dashboard-metrics-scraper", "kubernetes-dashboard-kong"]
    assert all(entry == {"kind": "Deployment", "name": entry["name"], "namespace": "kubernetes-dashboard"}
               for entry in result["ready"])
    no_scraper = plan(extra_values={"metricsScraper": {"enabled": False}}, release="dash", namespace="ui")
    assert [entry["name"] for entry in no_scraper["ready"]] == [
        "dash-kubernetes-dashboard-api", "dash-kubernetes-dashboard-auth", "dash-kubernetes-dashboard-web",
        "dash-kong"]


def test_stopped_keeps_the_release_and_accounts_with_every_deployment_at_zero_whatever_the_inventory_says():
    result = plan("stopped", extra_values={"api": {"scaling": {"replicas": 3}}})
    values = result["release_values"]
    assert values["api"] == {"scaling": {"replicas": 0}}
    assert [values[key]["scaling"]["replicas"] for key in ("auth", "web", "metricsScraper")] == [0, 0, 0]
    assert values["kong"]["replicaCount"] == 0 and values["kong"]["proxy"]["type"] == "LoadBalancer"
    assert result["ready"] == [] and kinds(result["objects"])[0] == ("ServiceAccount", "dashboard-viewer")
    assert result["tokens"] and result["remove_files"] == ["/r/dashboard-admin.token"]


def test_absent_removes_the_release_every_account_and_every_token_file():
    result = plan("started", run_state="absent", admin=True)
    assert result["state"] == "absent" and result["release_values"] is None and result["ready"] == []
    assert result["objects"] == [] and result["tokens"] == []
    assert kinds(result["remove"]) == [
        ("ClusterRoleBinding", "dashboard-viewer"), ("Secret", "dashboard-viewer-token"),
        ("ServiceAccount", "dashboard-viewer"), ("ClusterRoleBinding", "dashboard-admin"),
        ("Secret", "dashboard-admin-token"), ("ServiceAccount", "dashboard-admin")]
    assert result["remove_files"] == ["/r/dashboard-viewer.token", "/r/dashboard-admin.token"]


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="'running' is not one of"):
        plan("running")


def secret(name, token=None, secret_type="kubernetes.io/service-account-token"):
    data = {"ca.crt": base64.b64encode(b"CA").decode(), "namespace": base64.b64encode(b"kubernetes-dashboard").decode()}
    if token is not None:
        data["token"] = base64.b64encode(token.encode()).decode()
    return {"type": secret_type, "metadata": {"name": name, "namespace": "kubernetes-dashboard"}, "data": data}


def test_tokens_are_decoded_and_a_secret_not_filled_yet_has_none():
    wanted = plan(admin=True)["tokens"]
    found = core.tokens([secret("dashboard-viewer-token", "eyJ.viewer"), secret("dashboard-admin-token"),
                         secret("other", "eyJ.other"), secret("dashboard-admin-token-x", "eyJ.x", "Opaque")], wanted)
    assert [(entry["secret"], entry["token"]) for entry in found] == [("dashboard-viewer-token", "eyJ.viewer"),
                                                                      ("dashboard-admin-token", None)]
    assert found[0]["file"] == "/r/dashboard-viewer.token"
    assert core.tokens(None, wanted)[0]["token"] is None


def test_the_token_directories_each_once():
    tokens = [{"file": "/r/a.token"}, {"file": "/r/b.token"}, {"file": "/s/c.token"}]
    assert core.token_directories(tokens) == ["/r", "/s"]


def test_the_summary_names_the_address_and_files_never_a_token():
    lines = core.summary(plan())
    assert lines[0] == "Kubernetes Dashboard started: https://192.168.86.205/"
    assert "read-only login token (Secret dashboard-viewer-token): /r/dashboard-viewer.token (mode 0600)" in lines
    assert "no token file at /r/dashboard-admin.token" in lines
    assert any("dashboard_admin_token is false" in line for line in lines)
    assert core.summary(plan(admin=True), check_mode=True)[0].startswith("check mode, nothing changed")
    assert "0 replicas" in core.summary(plan("stopped"))[0]
    assert "uninstalled" in core.summary(plan("absent"))[0]
