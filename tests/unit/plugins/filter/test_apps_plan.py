"""The apps in preflight (inventory_problems with the apps role, as playbooks/apps.yml and start-cluster.yml with
apps_enabled call it) and the apps_plan / apps_summary filters the role uses."""

import copy

import pytest

from ansible_collections.dgx_spark.cluster.plugins.filter import apps_plan as plugin
from test_inventory_problems import check, inventory_hostvars  # the sibling module (pytest puts its directory on sys.path)

APPS_ROLES = ["apps", "cluster_lock"]


def test_the_shipped_catalogue_passes_preflight():
    assert check(roles=APPS_ROLES) == {"problems": [], "warnings": []}


def test_the_catalogue_is_not_checked_when_the_apps_role_is_not_in_the_run():
    # start-cluster.yml with apps_enabled false: a broken catalogue does not stop it (it does not apply the apps).
    hostvars = inventory_hostvars()
    for host in hostvars.values():
        host["apps_catalogue"]["ollama"]["image"] = "ollama/ollama:latest"
    assert check(hostvars)["problems"] == []
    assert "apps_catalogue.ollama.image" in check(hostvars, roles=APPS_ROLES)["problems"][0]


@pytest.mark.parametrize("extra,expected", [
    ({"apps": "ollama,olama"}, "apps: unknown app 'olama'"),
    ({"apps": "comfyui", "app_state": "absent", "apps_purge": "true"}, "apps_purge: comfyui is removed with purge"),
    ({"apps_selected": "vllm"}, "apps: vllm is not enabled"),
    ({"app_state": "running"}, "app_state / apps_selected_state: 'running' is not one of"),
    ({"apps_overrides": {"ollama": {"address": "192.168.86.240"}}}, "apps_catalogue.ollama.address: 192.168.86.240 is "
                                                                    "outside the MetalLB pool"),
    ({"apps_overrides": {"vllm": {"enabled": True, "preset": "x"}}}, "apps_catalogue.vllm.preset: unknown preset 'x'"),
])
def test_bad_run_choices_are_refused_in_preflight(extra, expected):
    problems = check(roles=APPS_ROLES, **extra)["problems"]
    assert len(problems) == 1 and expected in problems[0], problems


def test_gpus_come_from_each_nodes_own_spark_gpu_count():
    hostvars = inventory_hostvars()
    hostvars["spark-2959"]["spark_gpu_count"] = 0
    problems = check(hostvars, roles=APPS_ROLES)["problems"]
    assert problems == ["apps_catalogue.%s.gpus: 1 GPU(s) asked, but spark-2959 offers 0 (spark_gpu_count in its "
                        "host_vars)" % name for name in ("comfyui", "ollama")]


def test_the_spec_checks_types_and_choices():
    problems = check(roles=APPS_ROLES, apps_selected_state="running")["problems"]
    assert any("apps_selected_state must be one of: inventory, started, stopped, absent" in p for p in problems)
    assert check(roles=APPS_ROLES, apps_ready_timeout=0)["problems"] == [
        "apps_ready_timeout: 0 is below the lowest allowed value, 1 (seconds)"]


def shipped():
    host = copy.deepcopy(inventory_hostvars()["spark-2959"])
    return host


def test_apps_plan_filter():
    host = shipped()
    result = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": "1", "spark-ba63": 1},
                              pool=host["metallb_address_pool"], overrides={}, presets=host["apps_vllm_presets"],
                              selected="", shorthand="ollama", run_state="inventory", shorthand_state="stopped",
                              namespace="apps", services=[])
    assert result["problems"] == []
    assert [(app["name"], app["state"]) for app in result["apps"]] == [("ollama", "stopped")]
    assert [ns["metadata"]["name"] for ns in result["namespaces"]] == ["apps"]
    refused = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1},
                               pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"], shorthand="nope")
    assert refused["apps"] == [] and refused["namespaces"] == [] and len(refused["problems"]) == 1


def test_apps_plan_filter_refuses_an_address_another_service_holds():
    host = shipped()
    services = [{"metadata": {"namespace": "default", "name": "old", "annotations": {
        "metallb.universe.tf/loadBalancerIPs": "192.168.86.201"}}}]
    result = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1},
                              pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"], services=services)
    assert result["problems"] == ["apps_catalogue.ollama.address: 192.168.86.201 is already used by Service "
                                  "default/old; give the app another address of the pool"]


def test_apps_summary_filter_reads_uri_results():
    host = shipped()
    apps = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1},
                            pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"],
                            shorthand="ollama,comfyui")["apps"]
    probes = [{"item": {"name": "ollama"}, "status": 200, "msg": "OK (10 bytes)"}]
    assert plugin.apps_summary(apps, probes) == [
        "ollama: started on spark-2959, 192.168.86.201:11434, health answers "
        "(http://192.168.86.201:11434/api/version 200)",
        "comfyui: stopped on spark-2959, 192.168.86.206:8188, health not probed (stopped)"]


def test_apps_plan_filter_returns_what_the_role_reads():
    host = shipped()
    result = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 2, "spark-ba63": 1},
                              pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"], services=[],
                              overrides={"image-gen": {"enabled": True, "state": "started"},
                                         "ollama": {"state": "started"}, "comfyui": {"state": "absent"}},
                              shorthand="ollama,image-gen,comfyui", extra_apps=["dashboard"], ready_timeout="300")
    assert result["problems"] == []
    assert result["models"] == [{"app": "ollama", "url": "http://192.168.86.201:11434", "models": ["gpt-oss:20b"]}]
    assert [(item["node"], item["app"]) for item in result["image_imports"]] == [("spark-2959", "image-gen"),
                                                                                 ("spark-ba63", "image-gen")]
    waits = [(step["app"], step["object"]["kind"], step["wait_timeout"]) for step in result["apply"] if step["wait"]]
    assert waits == [("ollama", "Deployment", 300), ("image-gen", "Job", 7200), ("image-gen", "Deployment", 300)]
    assert result["extras"] == {}  # apps are named, the dashboard is not
    absent = [app for app in result["apps"] if app["state"] == "absent"]
    assert [(app["name"], app["jobs_selector"]) for app in absent] == [
        ("comfyui", "app.kubernetes.io/name=comfyui,dgx-spark.cluster/cache-job=true")]


@pytest.mark.parametrize("shorthand,state,expected", [
    ("", "", {"dashboard": "inventory"}),
    ("dashboard", "stopped", {"dashboard": "stopped"}),
    ("openwebui,dashboard", "absent", {"dashboard": "absent"}),
])
def test_apps_plan_filter_extra_apps(shorthand, state, expected):
    host = shipped()
    result = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1},
                              pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"], services=[],
                              shorthand=shorthand, shorthand_state=state, extra_apps=["dashboard"])
    assert result["problems"] == [] and result["extras"] == expected
    if shorthand == "dashboard":
        assert result["apps"] == [] and result["apply"] == [] and result["namespaces"] == []


def test_apps_plan_filter_refuses_an_unknown_app_naming_the_extras():
    host = shipped()
    result = plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1},
                              pool=host["metallb_address_pool"], presets=host["apps_vllm_presets"],
                              shorthand="dashbord", extra_apps=["dashboard"])
    assert result == {"problems": ["apps: unknown app 'dashbord' (apps_catalogue has comfyui, comfyui-model-manager, "
                                   "image-gen, ollama, openwebui, vllm; the extra apps dashboard)"],
                      "apps": [], "namespaces": [], "apply": [], "models": [], "image_imports": [], "extras": {}}


def test_apps_plan_filter_refuses_a_ready_timeout_that_is_not_seconds():
    host = shipped()
    with pytest.raises(plugin.AnsibleFilterError, match="ready_timeout"):
        plugin.apps_plan(host["apps_catalogue"], {"spark-2959": 1, "spark-ba63": 1}, pool=host["metallb_address_pool"],
                         presets=host["apps_vllm_presets"], ready_timeout="soon")
