"""playbooks/apps.yml on the lab (issue 13), with the LAB STAND-IN image of lab/app-standin for every app (the lab
inventory's apps_overrides): busybox answering the apps' endpoints, not the apps. Real here: the Deployments,
claims and LoadBalancer Services the role writes, the scheduling on the node the inventory names, the readiness
waits on the catalogue's health paths, and the path from the controller through the MetalLB address to the pod.
Not proven here (only real Sparks with GPUs): GPUs, the nvidia RuntimeClass, Longhorn volumes, the real images.

The lab has no volume provisioner (the Longhorn lab chart's StorageClass has no driver behind it), so this file
makes the LAB StorageClass dgxlab-apps-hostpath (no provisioner) and one hostPath PersistentVolume per claim,
pre-bound to it, and removes them, the claims and the namespace at the end: the cluster is left as it was.
Runs after test_repairs.py (which builds the cluster and its add-ons); about four minutes of lab time.
"""

import base64
import copy
import json
import os
import urllib.request

import pytest
import yaml

from conftest import API_URL, INVENTORY, KUBECONFIG, flat, node, playbook, record_time, wait_for

NAMESPACE = "apps"
LAB_CLASS = "dgxlab-apps-hostpath"
LAB_LABEL = {"dgx-spark.cluster/lab": "apps-test"}
HOST_DIR = "/var/lib/dgxlab-apps"
CONTROL, WORKER = "spark-2959", "spark-ba63"
# The two apps this file acts on, as the catalogue places them (group_vars/all/apps.yml).
OLLAMA = {"name": "ollama", "claim": "ollama-pvc", "node": CONTROL, "url": "http://192.168.86.201:11434"}
OPENWEBUI = {"name": "openwebui", "claim": "openwebui-data", "node": WORKER, "url": "http://192.168.86.200:8080"}
TWO = ("-e", "apps=ollama,openwebui")
# The lab inventory's Ollama model (apps_overrides): the role pulls it through Ollama's API.
MODEL = "lab-model:1b"
LOCAL_IMAGE = "localhost/dgxlab-app-local:1"
# Every claim the apps this file starts ask for, as the catalogue names them: (namespace, claim, access mode).
CLAIMS = [(NAMESPACE, "ollama-pvc", "ReadWriteOnce"), (NAMESPACE, "openwebui-data", "ReadWriteOnce"),
          (NAMESPACE, "comfyui-pvc", "ReadWriteOnce"), ("llm-inference", "vllm-models-pvc", "ReadWriteOnce"),
          ("image-gen", "image-gen-output", "ReadWriteMany")]
OTHER_NAMESPACES = ("llm-inference", "image-gen")


def clients():
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=KUBECONFIG, client_configuration=configuration)
    configuration.host = API_URL
    api_client = client.ApiClient(configuration)
    return client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.StorageV1Api(api_client)


def missing(call, *args):
    """True when the object ``call(*args)`` reads does not exist."""
    from kubernetes.client.rest import ApiException

    try:
        call(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def ignore_missing(call, *args, **kwargs):
    from kubernetes.client.rest import ApiException

    try:
        call(*args, **kwargs)
    except ApiException as exc:
        if exc.status != 404:
            raise


def lab_overrides():
    """The lab inventory's apps_overrides (a host variable there, from the _lab_apps anchor)."""
    with open(INVENTORY) as handle:
        return yaml.safe_load(handle)["spark_cluster"]["vars"]["_lab_apps"]["apps_overrides"]


def overrides_with(**changes):
    """``-e`` with the lab's apps_overrides and ``changes`` (app -> fields) over them: an extra variable replaces the
    inventory's whole value, so the lab's images must be in it too."""
    merged = copy.deepcopy(lab_overrides())
    for app, fields in changes.items():
        merged.setdefault(app, {}).update(fields)
    return ("-e", json.dumps({"apps_overrides": merged}))


def http(url, data=None, method=None):
    """(status, headers, body) of a request from the controller, or None when nothing answers."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except OSError:
        return None


def answers(url):
    """The JSON body of a 200 answer from ``url``, or None."""
    reply = http(url)
    return json.loads(reply[2]) if reply and reply[0] == 200 and reply[2] else None


def deployment_identity(apps_api, name):
    item = apps_api.read_namespaced_deployment(name, NAMESPACE)
    return item.metadata.uid, item.metadata.generation


def running_pods(core, name, namespace=NAMESPACE):
    """The app's pods that are not being deleted: [(pod name, node, ready)]."""
    pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=%s" % name).items
    found = []
    for pod in pods:
        if pod.metadata.deletion_timestamp:
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        found.append((pod.metadata.name, pod.spec.node_name, ready))
    return found


def ready_on(core, name, node_name):
    pods = running_pods(core, name)
    return pods if pods and all(ready and where == node_name for _pod, where, ready in pods) else None


def apps_run(*extra):
    # 2 s slices (the pull of the lab model takes about 6 s): the slice is at least a hundredth of the timeout.
    return playbook("apps.yml", "-e", "apps_ready_timeout=180", "-e", "apps_model_pull_slice=2",
                    "-e", "apps_model_pull_timeout=120", *extra)


def remove_lab_storage(core, storage):
    """The claims (through the API, not the product), then the LAB volumes, class and namespaces, then the hostPath
    directories and the imported local image on both nodes."""
    for space, name, _mode in CLAIMS:
        ignore_missing(core.delete_namespaced_persistent_volume_claim, name, space)
    for space, name, _mode in CLAIMS:
        wait_for(lambda: missing(core.read_namespaced_persistent_volume_claim, name, space), timeout=120,
                 what="claim %s deleted" % name)
        ignore_missing(core.delete_persistent_volume, "dgxlab-apps-%s" % name)
    ignore_missing(storage.delete_storage_class, LAB_CLASS)
    for space in (NAMESPACE,) + OTHER_NAMESPACES:
        ignore_missing(core.delete_namespace, space)
    for space in (NAMESPACE,) + OTHER_NAMESPACES:
        wait_for(lambda: missing(core.read_namespace, space), timeout=120, what="namespace %s deleted" % space)
    for name in (CONTROL, WORKER):
        node(name, "rm -rf %s; ctr -n k8s.io images rm %s >/dev/null 2>&1 || true" % (HOST_DIR, LOCAL_IMAGE))


def node_images(name):
    return node(name, "ctr -n k8s.io images ls -q").stdout.split()


@pytest.fixture(scope="module")
def lab_storage(lab_ready):
    """LAB ONLY: a StorageClass without a provisioner, and one hostPath volume per claim, pre-bound to it (no node
    affinity: the app can move; its data stays on the node it was written on)."""
    core, _apps_api, storage = clients()
    for space in (NAMESPACE,) + OTHER_NAMESPACES:
        assert missing(core.read_namespace, space), "namespace %s exists before the apps test" % space
    for _space, name, _mode in CLAIMS:
        ignore_missing(core.delete_persistent_volume, "dgxlab-apps-%s" % name)
    ignore_missing(storage.delete_storage_class, LAB_CLASS)
    wait_for(lambda: all(missing(core.read_persistent_volume, "dgxlab-apps-%s" % name) for _space, name, _mode in CLAIMS),
             timeout=60, what="old LAB volumes gone")
    for name in (CONTROL, WORKER):  # the locally built image is on no node before the test
        node(name, "ctr -n k8s.io images rm %s >/dev/null 2>&1 || true" % LOCAL_IMAGE)
    storage.create_storage_class({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LAB_CLASS, "labels": LAB_LABEL,
                     "annotations": {"description": "LAB ONLY: hostPath volumes made by tests/lab/test_apps.py"}},
        "provisioner": "kubernetes.io/no-provisioner", "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate"})
    for space, name, mode in CLAIMS:
        core.create_persistent_volume({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "dgxlab-apps-%s" % name, "labels": LAB_LABEL},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": [mode],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": LAB_CLASS,
                     "claimRef": {"namespace": space, "name": name},
                     "hostPath": {"path": "%s/%s" % (HOST_DIR, name), "type": "DirectoryOrCreate"}}})
    yield core
    # Whatever a failed test left (the last test removes everything): the product removes the apps, the API the rest.
    if not missing(core.read_namespace, NAMESPACE):
        apps_run("-e", "apps=ollama,openwebui,comfyui,comfyui-model-manager", "-e", "app_state=absent")
    for app in ("vllm", "image-gen"):
        apps_run("-e", "apps=%s" % app, "-e", "app_state=absent", *overrides_with(**{app: {"enabled": True}}))
    remove_lab_storage(core, storage)


def test_start_two_apps_they_answer_from_the_controller_and_keep_their_data(lab_storage):
    core, apps_api, _storage = clients()
    run = apps_run(*TWO, "-e", "app_state=started")
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: ollama and openwebui started (LAB STAND-IN)", run.seconds)
    for app in (OLLAMA, OPENWEBUI):
        assert ready_on(core, app["name"], app["node"]), running_pods(core, app["name"])
        claim = core.read_namespaced_persistent_volume_claim(app["claim"], NAMESPACE)
        assert claim.status.phase == "Bound" and claim.spec.storage_class_name == LAB_CLASS
        spec = apps_api.read_namespaced_deployment(app["name"], NAMESPACE).spec.template.spec
        assert spec.runtime_class_name is None and spec.containers[0].image == "localhost/dgxlab-app-standin:1"
    # The run's summary probed each health path from the controller, through the MetalLB address.
    summary = flat(run.output)
    assert "ollama: started on spark-2959, 192.168.86.201:11434, health answers" in summary, run
    assert "openwebui: started on spark-ba63, 192.168.86.200:8080, health answers" in summary, run
    assert wait_for(lambda: answers(OPENWEBUI["url"] + "/health"), timeout=60, what="Open WebUI /health") == {"status": True}
    # The role pulled the inventory's model through Ollama's API, slice by slice, each slice's progress printed
    # (the stand-in's 6 MB at 1 MB/s, 2 s slices: more than one slice), and the model is listed...
    progress = [line for line in run.output.splitlines() if "ollama: %s" % MODEL in line and "%" in line]
    assert len(progress) >= 2, run
    assert [model["name"] for model in answers(OLLAMA["url"] + "/api/tags")["models"]] == [MODEL]
    # ... and still is after its pod is replaced: it lives on the claim.
    for pod, _where, _ready in running_pods(core, "ollama"):
        core.delete_namespaced_pod(pod, NAMESPACE)
    wait_for(lambda: ready_on(core, "ollama", CONTROL) and len(running_pods(core, "ollama")) == 1, timeout=120,
             what="a new ollama pod Ready")
    tags = wait_for(lambda: answers(OLLAMA["url"] + "/api/tags"), timeout=60, what="Ollama answering again")
    assert [model["name"] for model in tags["models"]] == [MODEL], tags


def test_a_second_run_changes_nothing(lab_storage):
    run = apps_run(*TWO, "-e", "app_state=started")
    assert run.rc == 0 and run.changed == 0, run
    record_time("apps: no-op run, two apps started", run.seconds)


def test_bad_input_is_refused_before_anything_changes(lab_storage):
    core, apps_api, _storage = clients()
    before = dict((app, deployment_identity(apps_api, app)) for app in ("ollama", "openwebui"))
    versions = dict((app, apps_api.read_namespaced_deployment(app, NAMESPACE).metadata.resource_version)
                    for app in ("ollama", "openwebui"))
    # Preflight: an unknown app, an image tagged latest and an address outside the MetalLB pool, all named at once.
    run = apps_run("-e", "apps=ollama,nope", *overrides_with(ollama={"image": "ollama/ollama:latest",
                                                                     "address": "192.168.86.250"}))
    assert run.rc != 0, run
    output = flat(run.output)
    assert "apps: unknown app 'nope'" in output, run
    assert "apps_catalogue.ollama.image: 'ollama/ollama:latest' is tagged latest" in output, run
    assert "apps_catalogue.ollama.address: 192.168.86.250 is outside the MetalLB pool" in output, run
    # The role: an address another Service of the cluster already holds (read before anything is written).
    core.create_namespaced_service("default", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "apps-test-squatter", "labels": LAB_LABEL,
                     "annotations": {"metallb.io/loadBalancerIPs": "192.168.86.200"}},
        "spec": {"type": "ClusterIP", "selector": {"app": "none"}, "ports": [{"port": 80}]}})
    try:
        run = apps_run("-e", "apps=openwebui")
    finally:
        core.delete_namespaced_service("apps-test-squatter", "default")
    assert run.rc != 0, run
    assert ("apps_catalogue.openwebui.address: 192.168.86.200 is already used by Service default/apps-test-squatter"
            in flat(run.output)), run
    for app in ("ollama", "openwebui"):
        assert deployment_identity(apps_api, app) == before[app]
        assert apps_api.read_namespaced_deployment(app, NAMESPACE).metadata.resource_version == versions[app]


def test_stopping_one_app_keeps_its_claim_and_leaves_the_other_alone(lab_storage):
    core, apps_api, _storage = clients()
    ollama = deployment_identity(apps_api, "ollama")
    run = apps_run("-e", "apps=openwebui", "-e", "app_state=stopped")
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: openwebui stopped", run.seconds)
    assert apps_api.read_namespaced_deployment("openwebui", NAMESPACE).spec.replicas == 0
    wait_for(lambda: not running_pods(core, "openwebui"), timeout=60, what="openwebui's pod gone")
    assert core.read_namespaced_persistent_volume_claim("openwebui-data", NAMESPACE).status.phase == "Bound"
    assert not missing(core.read_namespaced_service, "openwebui", NAMESPACE)
    assert "openwebui: stopped on spark-ba63, 192.168.86.200:8080, health not probed (stopped)" in flat(run.output), run
    assert deployment_identity(apps_api, "ollama") == ollama
    assert answers(OLLAMA["url"] + "/api/version")


def test_an_override_moves_an_app_to_the_other_node(lab_storage):
    core, apps_api, _storage = clients()
    openwebui = deployment_identity(apps_api, "openwebui")
    run = apps_run("-e", "apps=ollama", *overrides_with(ollama={"node": WORKER}))
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: ollama moved to the worker", run.seconds)
    assert wait_for(lambda: ready_on(core, "ollama", WORKER), timeout=120, what="ollama Ready on %s" % WORKER)
    assert "ollama: started on spark-ba63, 192.168.86.201:11434, health answers" in flat(run.output), run
    assert wait_for(lambda: answers(OLLAMA["url"] + "/api/version"), timeout=60, what="Ollama from the worker")
    assert deployment_identity(apps_api, "openwebui") == openwebui


def test_absent_removes_workload_and_service_and_keeps_the_claim(lab_storage):
    core, apps_api, _storage = clients()
    openwebui = deployment_identity(apps_api, "openwebui")
    run = apps_run("-e", "apps=ollama", "-e", "app_state=absent")
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: ollama removed", run.seconds)
    assert missing(apps_api.read_namespaced_deployment, "ollama", NAMESPACE)
    assert missing(core.read_namespaced_service, "ollama", NAMESPACE)
    assert not missing(core.read_namespaced_persistent_volume_claim, "ollama-pvc", NAMESPACE)
    wait_for(lambda: not running_pods(core, "ollama"), timeout=60, what="ollama's pod gone")
    reply = http(OLLAMA["url"] + "/api/version")
    assert reply is None or reply[0] != 200, reply
    assert deployment_identity(apps_api, "openwebui") == openwebui


def test_a_local_image_is_imported_into_its_node_and_the_model_manager_runs_beside_comfyui(lab_storage):
    core, _apps_api, _storage = clients()
    assert LOCAL_IMAGE not in node_images(CONTROL)
    both = ("-e", "apps=comfyui,comfyui-model-manager", "-e", "app_state=started")
    run = apps_run(*both)
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: comfyui and its model manager started, the local image imported (LAB STAND-IN)", run.seconds)
    # Imported from the archive on the controller into the node the apps run on, and only there; the copy is gone.
    assert LOCAL_IMAGE in node_images(CONTROL)
    assert LOCAL_IMAGE not in node_images(WORKER)
    assert node(CONTROL, "ls -A /var/tmp/dgx-spark-images 2>/dev/null || true").stdout.strip() == ""
    # The model manager mounts ComfyUI's ReadWriteOnce claim, so it runs on ComfyUI's node.
    for name in ("comfyui", "comfyui-model-manager"):
        assert ready_on(core, name, CONTROL), running_pods(core, name)
    stats = wait_for(lambda: answers("http://192.168.86.206:8188/system_stats"), timeout=60, what="ComfyUI")
    assert stats["system"]["comfyui_version"] == "lab-standin"
    reply = wait_for(lambda: http("http://192.168.86.207:5000/"), timeout=60, what="the model manager")
    assert reply[0] == 200 and reply[1].get("X-Lab-Standin") == "comfyui-model-manager"
    again = apps_run(*both)
    assert again.rc == 0 and again.changed == 0, again
    run = apps_run("-e", "apps=comfyui,comfyui-model-manager", "-e", "app_state=absent")
    assert run.rc == 0, run


def test_vllm_serves_its_preset_and_its_token_is_a_secret_never_printed(lab_storage):
    core, apps_api, _storage = clients()
    token = "hf_lab_%d_never_printed" % os.getpid()
    vllm = overrides_with(vllm={"enabled": True, "preset": "phi-4"})
    run = apps_run("-e", "apps=vllm", "-e", "app_state=started", "-e", "apps_hf_token=" + token, *vllm)
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: vllm started with a preset (LAB STAND-IN)", run.seconds)
    assert token not in run.output
    secret = core.read_namespaced_secret("vllm-hf-token", "llm-inference")
    assert base64.b64decode(secret.data["token"]).decode() == token
    assert "last-applied" not in json.dumps(secret.metadata.annotations or {})
    models = wait_for(lambda: answers("http://192.168.86.203:8000/v1/models"), timeout=60, what="vLLM /v1/models")
    assert (models["data"][0]["id"], models["data"][0]["max_model_len"]) == ("microsoft/phi-4", 4096), models
    run = apps_run("-e", "apps=vllm", "-e", "app_state=absent", *vllm)
    assert run.rc == 0 and run.changed > 0, run
    assert missing(apps_api.read_namespaced_deployment, "vllm", "llm-inference")
    assert missing(core.read_namespaced_secret, "vllm-hf-token", "llm-inference")
    assert not missing(core.read_namespaced_persistent_volume_claim, "vllm-models-pvc", "llm-inference")


def test_image_generation_fills_its_cache_by_a_job_then_runs_one_replica_on_each_node(lab_storage):
    from kubernetes import client

    core, apps_api, _storage = clients()
    batch = client.BatchV1Api(apps_api.api_client)
    image_gen = overrides_with(**{"image-gen": {"enabled": True}})
    run = apps_run("-e", "apps=image-gen", "-e", "app_state=started", *image_gen)
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: image-gen started after its cache Job (LAB STAND-IN)", run.seconds)
    jobs = batch.list_namespaced_job("image-gen", label_selector="dgx-spark.cluster/cache-job=true").items
    assert len(jobs) == 1 and jobs[0].status.succeeded == 1, jobs
    # The Job ran on the first of the app's nodes and wrote into the claim's cache sub-path there.
    marker = node(CONTROL, "cat %s/image-gen-output/hf-cache/lab-cache-ready" % HOST_DIR).stdout
    assert marker.strip() == "LAB STAND-IN model cache for Qwen/Qwen-Image-2512"
    pods = running_pods(core, "image-gen", "image-gen")
    assert sorted(where for _pod, where, ready in pods if ready) == [CONTROL, WORKER], pods
    assert wait_for(lambda: answers("http://192.168.86.210/api/health"), timeout=60, what="image-gen") == {"status": "ok"}
    again = apps_run("-e", "apps=image-gen", "-e", "app_state=started", *image_gen)
    assert again.rc == 0 and again.changed == 0, again
    run = apps_run("-e", "apps=image-gen", "-e", "app_state=absent", *image_gen)
    assert run.rc == 0 and run.changed > 0, run
    assert not batch.list_namespaced_job("image-gen", label_selector="dgx-spark.cluster/cache-job=true").items
    assert missing(apps_api.read_namespaced_deployment, "image-gen", "image-gen")


def test_the_cluster_is_left_as_it_was(lab_storage):
    core, apps_api, storage = clients()
    run = apps_run("-e", "apps=openwebui", "-e", "app_state=absent")
    assert run.rc == 0, run
    assert missing(apps_api.read_namespaced_deployment, "openwebui", NAMESPACE)
    # The claims the product kept go through the API, with the LAB volumes, class and namespace.
    remove_lab_storage(core, storage)
    assert missing(core.read_namespace, NAMESPACE)
    assert not [pv.metadata.name for pv in core.list_persistent_volume().items
                if pv.metadata.name.startswith("dgxlab-apps-")]
    assert missing(storage.read_storage_class, LAB_CLASS)
