"""The apps core (plugins/module_utils/apps.py): the shipped catalogue, every bad input of the issue refused with a
message naming the app and the variable, and the objects rendered for started, stopped and absent apps."""

import copy
import os

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import apps as core

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
with open(os.path.join(REPO, "inventory", "group_vars", "all", "apps.yml")) as _handle:
    SHIPPED = yaml.safe_load(_handle)
with open(os.path.join(REPO, "inventory", "group_vars", "all", "metallb.yml")) as _handle:
    POOL = yaml.safe_load(_handle)["metallb_address_pool"]
NODES = {"spark-2959": 1, "spark-ba63": 1}


def catalogue():
    return copy.deepcopy(SHIPPED["apps_catalogue"])


def presets():
    return copy.deepcopy(SHIPPED["apps_vllm_presets"])


def check(cat=None, **kwargs):
    kwargs.setdefault("presets", presets())
    return core.check_catalogue(catalogue() if cat is None else cat, kwargs.pop("nodes", NODES),
                                kwargs.pop("pool", POOL), **kwargs)


def plan(cat=None, **kwargs):
    kwargs.setdefault("presets", presets())
    return core.plan(catalogue() if cat is None else cat, **kwargs)


def by_name(apps):
    return dict((app["name"], app) for app in apps)


def obj(app, kind):
    found = [item for item in app["present"] if item["kind"] == kind]
    assert len(found) == 1, (kind, app["present"])
    return found[0]


# --- the shipped catalogue ---------------------------------------------------------------------------------------

def test_shipped_catalogue_is_sound_and_off_by_default():
    assert SHIPPED["apps_enabled"] is False
    assert check() == []
    # vLLM and image generation enabled too (with the token and images a site adds) are still sound.
    assert check(overrides={"vllm": {"enabled": True}, "image-gen": {"enabled": True}}) == []


def test_shipped_catalogue_reproduces_the_old_layout_without_its_mistakes():
    cat = catalogue()
    layout = dict((name, (entry["address"], entry["node"], entry["gpus"])) for name, entry in cat.items())
    assert layout["openwebui"] == ("192.168.86.200", "spark-ba63", 0)
    assert layout["ollama"] == ("192.168.86.201", "spark-2959", 1)
    assert layout["comfyui"] == ("192.168.86.206", "spark-2959", 1)
    assert layout["comfyui-model-manager"] == ("192.168.86.207", "spark-2959", 0)
    assert layout["image-gen"][0] == "192.168.86.210"
    for name, entry in cat.items():
        assert core.image_problem(entry["image"]) is None, name
        assert entry.get("health_path"), name
        assert entry["resources"]["requests"] and entry["resources"]["limits"], name
    # The old claims' names: an existing cluster's data is adopted.
    assert cat["ollama"]["storage"]["claim"] == "ollama-pvc"
    assert cat["openwebui"]["storage"]["claim"] == "openwebui-data"
    assert cat["comfyui"]["storage"]["claim"] == "comfyui-pvc"
    webui = obj(by_name(plan())["openwebui"], "Deployment")["spec"]["template"]["spec"]
    assert "runtimeClassName" not in webui
    assert core.GPU_RESOURCE not in webui["containers"][0]["resources"]["limits"]


# --- bad input: each refused, naming the app and the variable ----------------------------------------------------

def one(problems, *parts):
    hits = [problem for problem in problems if all(part in problem for part in parts)]
    assert len(hits) == 1, problems
    return hits[0]


def test_address_outside_the_metallb_pool():
    cat = catalogue()
    cat["ollama"]["address"] = "192.168.86.230"
    one(check(cat), "apps_catalogue.ollama.address", "192.168.86.230 is outside the MetalLB pool",
        "metallb_address_pool")


def test_address_that_is_not_an_address():
    cat = catalogue()
    cat["ollama"]["address"] = "192.168.86.999"
    one(check(cat), "apps_catalogue.ollama.address", "is not an IP address")


def test_two_apps_on_one_address():
    cat = catalogue()
    cat["ollama"]["address"] = "192.168.86.200"
    one(check(cat), "ollama and openwebui share the address 192.168.86.200", "apps_catalogue.<app>.address")


def test_an_absent_app_frees_its_address():
    cat = catalogue()
    cat["ollama"]["address"] = "192.168.86.200"
    cat["ollama"]["state"] = "absent"
    assert check(cat) == []


def test_an_address_another_service_holds():
    services = [{"metadata": {"namespace": "default", "name": "legacy-webui",
                              "annotations": {"metallb.universe.tf/loadBalancerIPs": "192.168.86.200"}}},
                {"metadata": {"namespace": "other", "name": "by-status"}, "spec": {"type": "LoadBalancer"},
                 "status": {"loadBalancer": {"ingress": [{"ip": "192.168.86.201"}]}}},
                # The app's own Service holds its own address: no problem.
                {"metadata": {"namespace": "apps", "name": "comfyui",
                              "annotations": {core.LB_ANNOTATION: "192.168.86.206"}}}]
    problems = check(services=services)
    one(problems, "apps_catalogue.openwebui.address", "192.168.86.200 is already used by Service default/legacy-webui")
    one(problems, "apps_catalogue.ollama.address", "192.168.86.201 is already used by Service other/by-status")
    assert len(problems) == 2


@pytest.mark.parametrize("image,expected", [
    ("ollama/ollama:latest", "is tagged latest"),
    ("ollama/ollama:LATEST", "is tagged latest"),
    ("ollama/ollama", "has no tag, which means latest"),
    ("ollama/ollama:", "has an empty tag"),
    ("", "is empty"),
    (None, "is empty"),
    ("localhost:5000/ollama", "has no tag"),
    ("ollama/ollama@sha256:abc", "has a digest that is not sha256"),
])
def test_image_not_pinned(image, expected):
    cat = catalogue()
    cat["ollama"]["image"] = image
    one(check(cat), "apps_catalogue.ollama.image", expected)


@pytest.mark.parametrize("image", ["ollama/ollama:0.12.6", "localhost:5000/ollama:1.2", "localhost/comfyui:v0.9.1-arm64",
                                   "ollama/ollama@sha256:" + "a" * 64, "ollama/ollama:0.12.6@sha256:" + "b" * 64])
def test_image_pinned(image):
    assert core.image_problem(image) is None


def test_gpus_above_the_node():
    cat = catalogue()
    cat["ollama"]["gpus"] = 2
    one(check(cat), "apps_catalogue.ollama.gpus", "2 GPU(s) asked, but spark-2959 offers 1", "spark_gpu_count")


def test_gpu_app_on_a_node_without_gpus():
    one(check(nodes={"spark-2959": 0, "spark-ba63": 1}), "apps_catalogue.ollama.gpus", "spark-2959 offers 0")


def test_started_apps_on_one_node_ask_for_more_gpus_than_it_has():
    cat = catalogue()
    cat["comfyui"]["state"] = "started"
    one(check(cat), "spark-2959: the started apps comfyui (1), ollama (1) ask for 2 GPU(s) together", "offers 1")
    # Starting comfyui with -e while ollama is started in the inventory is refused the same way.
    one(check(selected=["comfyui"], run_state="started"), "the started apps comfyui (1), ollama (1)")
    # Stopping ollama in the same run frees the GPU.
    assert check(selected=["comfyui"], run_state="started", overrides={"ollama": {"state": "stopped"}}) == []


def test_unknown_app_in_the_selection():
    one(check(selected="ollama,olama"), "apps: unknown app 'olama'", "apps_catalogue has")


def test_disabled_app_in_the_selection():
    one(check(selected=["vllm"]), "apps: vllm is not enabled", "apps_catalogue.vllm.enabled")


def test_unknown_preset():
    one(check(overrides={"vllm": {"enabled": True, "preset": "nemotron-9000"}}), "apps_catalogue.vllm.preset",
        "unknown preset 'nemotron-9000'", "apps_vllm_presets has")


def test_distributed_preset_is_not_built_yet():
    table = presets()
    table["nemotron-nano-30b"]["nodes"] = 2
    one(check(presets=table, overrides={"vllm": {"enabled": True}}), "apps_vllm_presets.nemotron-nano-30b.nodes",
        "not built yet")


def test_absent_with_purge_not_confirmed():
    problems = check(selected=["comfyui"], run_state="absent", purge=True)
    one(problems, "apps_purge: comfyui is removed with purge", "apps_purge_confirm does not name it")
    assert check(selected=["comfyui"], run_state="absent", purge=True, purge_confirm="comfyui") == []


def test_purge_confirmation_for_an_app_not_removed_or_without_purge():
    one(check(selected=["comfyui"], run_state="absent", purge=True, purge_confirm="comfyui,ollama"),
        "apps_purge_confirm: names ollama, which this run does not remove")
    one(check(selected=["comfyui"], run_state="absent", purge_confirm="comfyui"),
        "apps_purge_confirm: names comfyui but apps_purge is false")
    one(check(selected=["comfyui"], run_state="absent", purge=True, purge_confirm="comfyui,nope"),
        "apps_purge_confirm: unknown app 'nope'")


def test_unknown_node_and_unknown_fields():
    cat = catalogue()
    cat["ollama"]["node"] = "spark-0000"
    cat["ollama"]["gpu"] = 1
    problems = check(cat)
    one(problems, "apps_catalogue.ollama.node", "'spark-0000' is not a node of the inventory")
    one(problems, "apps_catalogue.ollama: unknown field(s) gpu")


def test_shared_read_write_once_claim_on_another_node():
    one(check(overrides={"comfyui-model-manager": {"node": "spark-ba63"}}), "apps_catalogue.comfyui-model-manager.node",
        "shares comfyui's ReadWriteOnce claim", "spark-2959")


def test_override_for_an_unknown_app_and_bad_state():
    problems = check(overrides={"olama": {"node": "spark-ba63"}, "ollama": {"state": "running"}})
    one(problems, "apps_overrides.olama: not an app of apps_catalogue")
    one(problems, "apps_catalogue.ollama.state: 'running' is not one of started, stopped, absent")


@pytest.mark.parametrize("field,value,expected", [
    ("resources", {"requests": {"cpu": "lots"}}, "apps_catalogue.ollama.resources.requests.cpu"),
    ("ports", [], "apps_catalogue.ollama.ports"),
    ("ports", [{"name": "http", "port": 70000}], "apps_catalogue.ollama.ports[0].port"),
    ("health_path", "api/version", "apps_catalogue.ollama.health_path"),
    ("env", {"BAD-NAME": "x"}, "apps_catalogue.ollama.env"),
    ("storage", {"size": "lots", "mounts": [{"path": "/data"}]}, "apps_catalogue.ollama.storage.size"),
    ("storage", {"size": "1Gi", "mounts": [{"path": "data"}]}, "apps_catalogue.ollama.storage.mounts[0].path"),
    ("storage", {"size": "1Gi", "mounts": [{"path": "/d", "sub_path": "../x"}]}, "storage.mounts[0].sub_path"),
    ("node", ["spark-2959", "spark-ba63"], "apps_catalogue.ollama.storage.access_mode"),
])
def test_field_problems(field, value, expected):
    cat = catalogue()
    cat["ollama"][field] = value
    one(check(cat), expected)


def test_disabled_apps_are_not_checked():
    cat = catalogue()
    cat["vllm"]["image"] = "avarok/vllm-dgx-spark:latest"
    assert check(cat) == []


# --- the run's choices ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,expected", [
    (("", "ollama,openwebui", "inventory", "stopped"), (["ollama", "openwebui"], "stopped")),
    (("comfyui", "ollama", None, None), (["comfyui"], "inventory")),
    ((["a", " b "], None, "absent", "started"), (["a", "b"], "absent")),
    ((None, None, None, None), ([], "inventory")),
])
def test_run_choices(args, expected):
    assert core.run_choices(*args) == expected


# --- rendering -----------------------------------------------------------------------------------------------------

def test_started_gpu_app():
    ollama = by_name(plan())["ollama"]
    assert ollama["state"] == "started" and ollama["url"] == "http://192.168.86.201:11434/api/version"
    assert [item["kind"] for item in ollama["present"]] == ["PersistentVolumeClaim", "Deployment", "Service"]
    deployment = obj(ollama, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "spark-2959"}
    # spark-2959 is the control plane: kubeadm's NoSchedule taint is tolerated (found on the lab: Pending without it).
    assert pod["tolerations"] == [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    assert pod["runtimeClassName"] == "nvidia"
    container = pod["containers"][0]
    assert container["resources"]["limits"][core.GPU_RESOURCE] == "1"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/version", "port": 11434}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 300
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/root/.ollama"}]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "ollama-pvc"}}]
    claim = obj(ollama, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "ollama-pvc"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}},
                             "storageClassName": "longhorn"}
    service = obj(ollama, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == {"metallb.io/loadBalancerIPs": "192.168.86.201"}
    assert "loadBalancerIP" not in service["spec"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 11434, "targetPort": 11434, "protocol": "TCP"}]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "ollama"}


def test_stopped_keeps_everything_at_zero_replicas():
    comfyui = by_name(plan())["comfyui"]
    assert comfyui["state"] == "stopped" and comfyui["absent"] == [] and comfyui["kept"] == []
    assert [item["kind"] for item in comfyui["present"]] == ["PersistentVolumeClaim", "Deployment", "Service"]
    assert obj(comfyui, "Deployment")["spec"]["replicas"] == 0
    mounts = obj(comfyui, "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [(mount["mountPath"], mount["subPath"]) for mount in mounts][0] == ("/workspace/ComfyUI/models", "models")
    assert len(mounts) == 5


def test_shared_claim_is_mounted_not_owned():
    manager = by_name(plan())["comfyui-model-manager"]
    assert [item["kind"] for item in manager["present"]] == ["Deployment", "Service"]
    pod = obj(manager, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "comfyui-pvc"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/models", "subPath": "models"}]
    assert "runtimeClassName" not in pod
    assert obj(manager, "Service")["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": 8080,
                                                         "protocol": "TCP"}]


def test_absent_removes_workload_and_service_and_keeps_the_claim():
    ollama = by_name(plan(selected=["ollama"], run_state="absent"))["ollama"]
    assert ollama["present"] == []
    assert [(ref["kind"], ref["metadata"]["name"]) for ref in ollama["absent"]] == [("Service", "ollama"),
                                                                                    ("Deployment", "ollama")]
    assert [(ref["kind"], ref["metadata"]["name"]) for ref in ollama["kept"]] == [("PersistentVolumeClaim", "ollama-pvc")]


def test_absent_with_confirmed_purge_removes_the_claim_last():
    ollama = by_name(plan(selected=["ollama"], run_state="absent", purge=True, purge_confirm="ollama"))["ollama"]
    assert [ref["kind"] for ref in ollama["absent"]] == ["Service", "Deployment", "PersistentVolumeClaim"]
    assert ollama["kept"] == []
    # Purge without the app named keeps the claim (check_catalogue refuses that run first).
    assert by_name(plan(selected=["ollama"], run_state="absent", purge=True))["ollama"]["kept"]


def test_selection_acts_on_those_apps_only():
    apps = plan(selected="ollama,openwebui", run_state="stopped")
    assert [app["name"] for app in apps] == ["openwebui", "ollama"]
    assert all(app["state"] == "stopped" for app in apps)
    assert all(obj(app, "Deployment")["spec"]["replicas"] == 0 for app in apps)
    # Without a selection: every enabled app, each in its own state; disabled ones never.
    every = by_name(plan())
    assert sorted(every) == ["comfyui", "comfyui-model-manager", "ollama", "openwebui"]
    assert every["openwebui"]["state"] == "started" and every["comfyui"]["state"] == "stopped"


def test_override_moves_an_app():
    ollama = by_name(plan(overrides={"ollama": {"node": "spark-ba63"}}))["ollama"]
    assert obj(ollama, "Deployment")["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/hostname": "spark-ba63"}
    # The override merges: the rest of the entry stays.
    assert obj(ollama, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == "ollama/ollama:0.12.6"


def test_vllm_preset_and_token_secret_reference():
    vllm = by_name(plan(overrides={"vllm": {"enabled": True, "state": "started"}}))["vllm"]
    assert vllm["namespace"] == "llm-inference" and vllm["hf_secret"] == "vllm-hf-token"
    container = obj(vllm, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm", "serve", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "--dtype",
                                    "bfloat16", "--max-model-len", "2048", "--gpu-memory-utilization", "0.85",
                                    "--tensor-parallel-size", "1", "--trust-remote-code", "--download-dir",
                                    "/models", "--enforce-eager"]
    env = dict((item["name"], item) for item in container["env"])
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "vllm-hf-token", "key": "token", "optional": True}}}
    assert env["HF_HOME"]["value"] == "/models/.cache/huggingface"
    assert container["startupProbe"]["failureThreshold"] == 180
    pod = obj(vllm, "Deployment")["spec"]["template"]["spec"]
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in pod["volumes"]
    phi = by_name(plan(overrides={"vllm": {"enabled": True, "preset": "phi-4"}}))["vllm"]
    env = dict((item["name"], item.get("value")) for item in obj(phi, "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["env"])
    assert env["VLLM_USE_V1"] == "0" and env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    absent = by_name(plan(overrides={"vllm": {"enabled": True, "state": "absent"}}))["vllm"]
    assert ("Secret", "vllm-hf-token") in [(ref["kind"], ref["metadata"]["name"]) for ref in absent["absent"]]


def test_app_spread_over_both_nodes():
    gen = by_name(plan(overrides={"image-gen": {"enabled": True, "state": "started"},
                                  "ollama": {"state": "stopped"}}))["image-gen"]
    deployment = obj(gen, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert "nodeSelector" not in pod
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["spark-2959", "spark-ba63"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert obj(gen, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]
    assert obj(gen, "Service")["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": 7860, "protocol": "TCP"}


def test_app_without_address_gets_a_cluster_ip_service():
    cat = catalogue()
    del cat["ollama"]["address"]
    ollama = by_name(plan(cat))["ollama"]
    assert obj(ollama, "Service")["spec"]["type"] == "ClusterIP"
    assert "annotations" not in obj(ollama, "Service")["metadata"]
    assert ollama["url"] is None


def test_namespaces_of_the_apps_not_removed():
    apps = plan(overrides={"vllm": {"enabled": True}})
    assert [ns["metadata"]["name"] for ns in core.namespaces(apps)] == ["apps", "llm-inference"]
    assert core.namespaces(plan(selected=["ollama"], run_state="absent")) == []


def test_rendering_refuses_an_unknown_preset():
    with pytest.raises(core.AppsInputError):
        plan(overrides={"vllm": {"enabled": True, "preset": "nope"}})


# --- summary --------------------------------------------------------------------------------------------------------

def test_summary_lines():
    apps = plan()
    failed = {"status": -1, "msg": "Status code was -1 and not [200]: timed out\nmore"}
    lines = core.summary_lines(apps, {"ollama": {"status": 200}, "openwebui": failed})
    assert lines == [
        "openwebui: started on spark-ba63, 192.168.86.200:8080, health DOES NOT ANSWER "
        "(http://192.168.86.200:8080/health: Status code was -1 and not [200]: timed out)",
        "ollama: started on spark-2959, 192.168.86.201:11434, health answers (http://192.168.86.201:11434/api/version 200)",
        "comfyui: stopped on spark-2959, 192.168.86.206:8188, health not probed (stopped)",
        "comfyui-model-manager: stopped on spark-2959, 192.168.86.207:5000, health not probed (stopped)",
    ]


# --- models (model_api: ollama) ------------------------------------------------------------------------------------

def test_shipped_ollama_serves_ollamas_api_with_the_old_stacks_model():
    ollama = catalogue()["ollama"]
    assert ollama["model_api"] == "ollama" and ollama["models"] == ["gpt-oss:20b"]
    assert by_name(plan())["ollama"]["models"] == ["gpt-oss:20b"]


@pytest.mark.parametrize("model", ["llama3.1:8b", "qwen2.5-coder:7b", "hf.co/org/repo:Q4_K_M", "llama3",
                                   "library/llama3.2:3b", "registry.ollama.ai/library/gpt-oss:20b", "nomic-embed-text"])
def test_ollama_model_names_accepted(model):
    cat = catalogue()
    cat["ollama"]["models"] = [model]
    assert check(cat) == []


@pytest.mark.parametrize("model,expected", [
    ("llama3 8b", "'llama3 8b' is not an Ollama model name"),
    ("llama3:", "'llama3:' is not an Ollama model name"),
    ("a/b/c/d:1", "'a/b/c/d:1' is not an Ollama model name"),
    ("-llama:1", "'-llama:1' is not an Ollama model name"),
    ("", "'' is not a model name"),
    ("  ", "'  ' is not a model name"),
    (3, "3 is not a model name"),
    (None, "None is not a model name"),
])
def test_bad_model_names(model, expected):
    cat = catalogue()
    cat["ollama"]["models"] = ["gpt-oss:20b", model]
    one(check(cat), "apps_catalogue.ollama.models[1]: " + expected)


@pytest.mark.parametrize("models", [["llama3", "llama3:latest"], ["llama3:8b", "Llama3:8B"]])
def test_a_model_listed_twice(models):
    cat = catalogue()
    cat["ollama"]["models"] = models
    one(check(cat), "apps_catalogue.ollama.models[1]: %s is listed twice (models[0] is %s)" % (models[1], models[0]))


def test_models_need_ollamas_api_and_an_address():
    cat = catalogue()
    del cat["ollama"]["model_api"]
    assert check(cat) == ["apps_catalogue.ollama.models: only an app that serves Ollama's API pulls models; set "
                          "apps_catalogue.ollama.model_api: ollama, or remove the list"]
    cat = catalogue()
    cat["openwebui"]["models"] = ["llama3"]
    one(check(cat), "apps_catalogue.openwebui.models: only an app that serves Ollama's API")
    cat = catalogue()
    del cat["ollama"]["address"]
    one(check(cat), "apps_catalogue.ollama.models: the models are pulled from the controller through the app's "
                    "LoadBalancer address", "apps_catalogue.ollama.address")
    # No list, or an empty one, needs neither.
    cat["ollama"]["models"] = []
    assert check(cat) == []
    cat = catalogue()
    cat["ollama"]["model_api"] = "openai"
    one(check(cat), "apps_catalogue.ollama.model_api: 'openai' is not one of ollama")
    cat["ollama"]["model_api"] = "ollama"
    cat["ollama"]["models"] = "llama3"
    one(check(cat), "apps_catalogue.ollama.models: must be a list of model names")


def test_models_to_pull_only_for_started_apps_with_a_list():
    cat = catalogue()
    cat["ollama"]["models"] = ["llama3", "hf.co/org/repo:Q4_K_M"]
    apps = plan(cat)
    assert core.model_pulls(apps) == [{"app": "ollama", "url": "http://192.168.86.201:11434",
                                       "models": ["llama3:latest", "hf.co/org/repo:Q4_K_M"]}]
    assert core.model_pulls(plan(cat, selected=["ollama"], run_state="stopped")) == []
    assert core.model_pulls(plan(cat, selected=["ollama"], run_state="absent")) == []
    assert core.model_pulls(plan(cat, selected=["openwebui"])) == []
    cat["ollama"]["models"] = []
    assert core.model_pulls(plan(cat)) == []


# --- image_archive --------------------------------------------------------------------------------------------------

def test_shipped_local_images_name_their_archives():
    cat = catalogue()
    for name in ("comfyui", "comfyui-model-manager", "image-gen"):
        archive = cat[name]["image_archive"]
        assert cat[name]["image"].startswith("localhost/") and cat[name]["pull_policy"] == "Never", name
        assert archive.startswith("/var/lib/dgx-spark/images/") and archive.endswith(".tar") and "{" not in archive
    assert "image_archive" not in cat["ollama"]


@pytest.mark.parametrize("archive,policy,expected", [
    ("images/comfyui.tar", "Never", "apps_catalogue.comfyui.image_archive: 'images/comfyui.tar' is not an absolute "
                                    "path on the controller"),
    ("~/comfyui.tar", "Never", "'~/comfyui.tar' is not an absolute path"),
    (["/a.tar"], "Never", "['/a.tar'] is not an absolute path"),
    ("/var/lib/images/", "Never", "apps_catalogue.comfyui.image_archive: '/var/lib/images/' is a directory"),
    ("/var/lib/comfyui.tar", "Always", "apps_catalogue.comfyui.image_archive: with pull_policy Always the kubelet pulls "
                                       "localhost/comfyui:v0.9.1-arm64 from its registry at every start"),
])
def test_bad_image_archive(archive, policy, expected):
    cat = catalogue()
    cat["comfyui"]["image_archive"] = archive
    cat["comfyui"]["pull_policy"] = policy
    one(check(cat), expected)


def test_an_unrendered_image_archive_is_left_to_the_role_which_sees_it_rendered():
    # Preflight reads the inventory's values unrendered; the role's plan gets the rendered path and checks it.
    cat = catalogue()
    cat["comfyui"]["image_archive"] = "{{ inventory_dir }}/../images/comfyui.tar"
    assert check(cat) == []
    cat["comfyui"]["image_archive"] = "inventory/../images/comfyui.tar"
    one(check(cat), "apps_catalogue.comfyui.image_archive: 'inventory/../images/comfyui.tar' is not an absolute path")


def test_image_archive_with_if_not_present_is_sound():
    cat = catalogue()
    cat["comfyui"]["pull_policy"] = "IfNotPresent"
    assert check(cat) == []


def test_image_imports_per_node_for_apps_started_or_stopped():
    apps = plan(overrides={"image-gen": {"enabled": True}})
    assert core.image_imports(apps) == [
        {"node": "spark-2959", "app": "comfyui", "image": "localhost/comfyui:v0.9.1-arm64",
         "archive": "/var/lib/dgx-spark/images/comfyui-v0.9.1-arm64.tar"},
        {"node": "spark-2959", "app": "comfyui-model-manager", "image": "localhost/comfyui-model-manager:1.0.0",
         "archive": "/var/lib/dgx-spark/images/comfyui-model-manager-1.0.0.tar"},
        {"node": "spark-2959", "app": "image-gen", "image": "localhost/image-gen:1.0.0",
         "archive": "/var/lib/dgx-spark/images/image-gen-1.0.0.tar"},
        {"node": "spark-ba63", "app": "image-gen", "image": "localhost/image-gen:1.0.0",
         "archive": "/var/lib/dgx-spark/images/image-gen-1.0.0.tar"},
    ]
    # Removed apps import nothing; apps not acted on are not listed.
    assert core.image_imports(plan(selected=["comfyui"], run_state="absent")) == []
    assert core.image_imports(plan(selected=["ollama", "openwebui"])) == []


def test_image_imports_once_per_node_and_image():
    image = "localhost/shared:1.0.0"
    overrides = {"comfyui": {"image": image, "image_archive": "/srv/b.tar"},
                 "comfyui-model-manager": {"image": image, "image_archive": "/srv/a.tar"},
                 "openwebui": {"image": image, "image_archive": "/srv/c.tar"}}
    assert check(overrides=overrides) == []
    assert [(item["node"], item["app"], item["archive"]) for item in core.image_imports(plan(overrides=overrides))] == [
        ("spark-2959", "comfyui", "/srv/b.tar"), ("spark-ba63", "openwebui", "/srv/c.tar")]


# --- cache_job ------------------------------------------------------------------------------------------------------

GEN_STARTED = {"image-gen": {"enabled": True, "state": "started"}, "ollama": {"state": "stopped"}}


def test_shipped_image_gen_downloads_its_model_into_the_claims_cache():
    gen = catalogue()["image-gen"]
    job = gen["cache_job"]
    assert job["env"] == {"MODEL_REPO": "Qwen/Qwen-Image-2512"}
    assert job["command"] == ["python", "-c"] and "snapshot_download(os.environ['MODEL_REPO'])" in job["args"][0]
    assert gen["env"]["HF_HOME"] == "/models/huggingface"
    assert gen["storage"]["mounts"] == [{"path": "/generated", "sub_path": "output"},
                                        {"path": "/models/huggingface", "sub_path": "hf-cache"}]


def test_started_app_runs_its_cache_job_before_its_deployment():
    gen = by_name(plan(overrides=GEN_STARTED))["image-gen"]
    assert [item["kind"] for item in gen["present"]] == ["PersistentVolumeClaim", "Job", "Deployment", "Service"]
    job = obj(gen, "Job")
    name = job["metadata"]["name"]
    assert name.startswith("image-gen-cache-") and len(name) == len("image-gen-cache-") + 8
    int(name[-8:], 16)
    assert gen["cache_job"] == {"name": name, "timeout": 7200}
    assert job["metadata"]["namespace"] == "image-gen"
    assert job["metadata"]["labels"] == {"app.kubernetes.io/name": "image-gen", "app.kubernetes.io/part-of":
                                         "dgx-spark-apps", "app.kubernetes.io/managed-by": "dgx_spark.cluster",
                                         "dgx-spark.cluster/cache-job": "true"}
    assert job["spec"]["backoffLimit"] == 2 and "ttlSecondsAfterFinished" not in job["spec"]
    pod = job["spec"]["template"]["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    # The pod is no endpoint of the app's Service and no peer of its anti-affinity: no app name label.
    assert "app.kubernetes.io/name" not in labels and labels["dgx-spark.cluster/cache-job"] == "true"
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "spark-2959"}
    assert pod["tolerations"] == [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    assert "runtimeClassName" not in pod
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "image-gen-output"}}]
    container = pod["containers"][0]
    assert container["image"] == "localhost/image-gen:1.0.0" and container["imagePullPolicy"] == "Never"
    assert container["command"] == ["python", "-c"] and len(container["args"]) == 1
    assert "resources" not in container
    assert container["volumeMounts"] == [
        {"name": "data", "mountPath": "/generated", "subPath": "output"},
        {"name": "data", "mountPath": "/models/huggingface", "subPath": "hf-cache"}]
    env = dict((item["name"], item) for item in container["env"])
    assert env["MODEL_REPO"]["value"] == "Qwen/Qwen-Image-2512" and env["HF_HOME"]["value"] == "/models/huggingface"
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "image-gen-hf-token", "key": "token", "optional": True}}}
    # The Deployment reads the same cache through the same mounts.
    deployment = obj(gen, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert deployment["volumeMounts"][:2] == container["volumeMounts"]
    assert {"name": "HF_HOME", "value": "/models/huggingface"} in deployment["env"]


def test_cache_job_env_over_the_apps_and_its_name_follows_its_pod_spec():
    first = obj(by_name(plan(overrides=GEN_STARTED))["image-gen"], "Job")
    again = obj(by_name(plan(overrides=GEN_STARTED))["image-gen"], "Job")
    assert first == again
    overrides = copy.deepcopy(GEN_STARTED)
    overrides["image-gen"]["cache_job"] = {"env": {"MODEL_REPO": "stabilityai/sdxl", "HF_HOME": "/elsewhere"}}
    changed = obj(by_name(plan(overrides=overrides))["image-gen"], "Job")
    env = dict((item["name"], item.get("value")) for item in changed["spec"]["template"]["spec"]["containers"][0]["env"])
    assert env["MODEL_REPO"] == "stabilityai/sdxl" and env["HF_HOME"] == "/elsewhere"
    assert changed["metadata"]["name"] != first["metadata"]["name"]
    # A changed Deployment alone (replicas, probes) leaves the Job as it is.
    overrides = copy.deepcopy(GEN_STARTED)
    overrides["image-gen"]["startup_timeout"] = 1200
    assert obj(by_name(plan(overrides=overrides))["image-gen"], "Job") == first


def test_cache_job_on_a_read_write_once_claim_runs_on_the_apps_node():
    overrides = {"ollama": {"cache_job": {"command": ["ollama", "--version"]}}}
    assert check(overrides=overrides) == []
    ollama = by_name(plan(overrides=overrides))["ollama"]
    assert [item["kind"] for item in ollama["present"]] == ["PersistentVolumeClaim", "Job", "Deployment", "Service"]
    pod = obj(ollama, "Job")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "spark-2959"}
    assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/root/.ollama"}]
    assert "args" not in pod["containers"][0] and ollama["cache_job"]["timeout"] is None


def test_cache_job_only_for_started_apps_and_removed_by_label_with_the_app():
    overrides = copy.deepcopy(GEN_STARTED)
    overrides["image-gen"]["state"] = "stopped"
    stopped = by_name(plan(overrides=overrides))["image-gen"]
    assert [item["kind"] for item in stopped["present"]] == ["PersistentVolumeClaim", "Deployment", "Service"]
    assert stopped["cache_job"] is None
    overrides["image-gen"]["state"] = "absent"
    absent = by_name(plan(overrides=overrides))["image-gen"]
    assert absent["jobs_selector"] == "app.kubernetes.io/name=image-gen,dgx-spark.cluster/cache-job=true"
    assert "Job" not in [ref["kind"] for ref in absent["absent"]]


@pytest.mark.parametrize("job,expected", [
    (["python"], "apps_catalogue.image-gen.cache_job: must be a mapping {command, args, env, timeout}"),
    ({"command": ["true"], "retries": 3}, "apps_catalogue.image-gen.cache_job: unknown field(s) retries"),
    ({"args": ["x"]}, "apps_catalogue.image-gen.cache_job.command: the command the Job runs, a list of strings"),
    ({"command": []}, "apps_catalogue.image-gen.cache_job.command"),
    ({"command": "python -c x"}, "apps_catalogue.image-gen.cache_job.command"),
    ({"command": ["python", 3]}, "apps_catalogue.image-gen.cache_job.command"),
    ({"command": ["true"], "args": "x"}, "apps_catalogue.image-gen.cache_job.args: must be a list of strings"),
    ({"command": ["true"], "env": ["A=1"]}, "apps_catalogue.image-gen.cache_job.env: must be a mapping"),
    ({"command": ["true"], "env": {"BAD-NAME": "1"}}, "apps_catalogue.image-gen.cache_job.env: 'BAD-NAME' is not"),
    ({"command": ["true"], "env": {"A": [1]}}, "apps_catalogue.image-gen.cache_job.env.A: must be a plain value"),
    ({"command": ["true"], "timeout": 0}, "apps_catalogue.image-gen.cache_job.timeout: 0 is not a number of seconds"),
    ({"command": ["true"], "timeout": "soon"}, "apps_catalogue.image-gen.cache_job.timeout: 'soon'"),
])
def test_bad_cache_job(job, expected):
    cat = catalogue()
    cat["image-gen"]["cache_job"] = job
    one(check(cat, overrides={"image-gen": {"enabled": True}}), expected)


def test_cache_job_of_an_app_whose_name_is_too_long_for_the_jobs():
    cat = catalogue()
    name = "a" * 50
    cat[name] = dict(copy.deepcopy(cat["openwebui"]), address="192.168.86.215",
                     cache_job={"command": ["true"]})
    one(check(cat), "apps_catalogue.%s.cache_job: the Job's name %s-cache-<8 hex> would be longer than 63" % (name, name))


def test_apply_steps_wait_for_the_job_and_the_rollout_of_started_apps():
    overrides = copy.deepcopy(GEN_STARTED)
    steps = core.apply_steps(plan(overrides=overrides), ready_timeout=900)
    waits = [(step["app"], step["object"]["kind"], step["wait"], step["wait_condition"], step["wait_timeout"])
             for step in steps if step["app"] in ("image-gen", "openwebui", "ollama")]
    assert waits == [
        ("openwebui", "PersistentVolumeClaim", False, None, 900), ("openwebui", "Deployment", True, None, 900),
        ("openwebui", "Service", False, None, 900),
        ("ollama", "PersistentVolumeClaim", False, None, 900), ("ollama", "Deployment", False, None, 900),
        ("ollama", "Service", False, None, 900),
        ("image-gen", "PersistentVolumeClaim", False, None, 900),
        ("image-gen", "Job", True, {"type": "Complete", "status": "True"}, 7200),
        ("image-gen", "Deployment", True, None, 900), ("image-gen", "Service", False, None, 900)]
    assert [step["object"] for step in steps] == [item for app in plan(overrides=overrides) for item in app["present"]]
    # A Job without its own timeout waits as long as a rollout.
    cat = catalogue()
    del cat["image-gen"]["cache_job"]["timeout"]
    job_steps = [step for step in core.apply_steps(plan(cat, overrides=GEN_STARTED), 900) if step["object"]["kind"] == "Job"]
    assert [step["wait_timeout"] for step in job_steps] == [900]


def test_image_gen_runs_one_replica_on_each_node_never_two_on_one():
    gen = by_name(plan(overrides=GEN_STARTED))["image-gen"]
    deployment = obj(gen, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    assert affinity["podAntiAffinity"] == {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "image-gen"}},
         "topologyKey": "kubernetes.io/hostname"}]}
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["spark-2959", "spark-ba63"]}]}]
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "image-gen"


# --- extra apps -------------------------------------------------------------------------------------------------------

def test_extra_apps_may_be_named_and_unknown_names_list_them():
    assert check(selected="ollama,dashboard", extra_apps=["dashboard"]) == []
    one(check(selected="dashboard"), "apps: unknown app 'dashboard'")
    problem = one(check(selected="dashbaord", extra_apps=["dashboard"]), "apps: unknown app 'dashbaord'")
    assert problem.endswith("; the extra apps dashboard)")
    one(check(extra_apps=["ollama"]), "apps_catalogue.ollama: ollama is also an extra app of this run")
    # Named alone, no catalogue app is acted on.
    assert plan(selected=["dashboard"]) == []


@pytest.mark.parametrize("selected,state,expected", [
    ([], "inventory", {"dashboard": "inventory"}),
    (["dashboard"], "stopped", {"dashboard": "stopped"}),
    (["ollama"], "absent", {}),
    (["ollama", "dashboard"], None, {"dashboard": "inventory"}),
])
def test_extras(selected, state, expected):
    assert core.extras(["dashboard"], selected, state) == expected
    assert core.extras(None, selected, state) == {}
