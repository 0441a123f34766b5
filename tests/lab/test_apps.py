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

import copy
import json
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
MODEL = "lab-model:1b"


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


def running_pods(core, name):
    """The app's pods that are not being deleted: [(pod name, node, ready)]."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=%s" % name).items
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
    return playbook("apps.yml", "-e", "apps_ready_timeout=180", *extra)


def remove_lab_storage(core, storage):
    """The claims (through the API, not the product), then the LAB volumes, class and namespace, then the hostPath
    directories on both nodes."""
    for app in (OLLAMA, OPENWEBUI):
        ignore_missing(core.delete_namespaced_persistent_volume_claim, app["claim"], NAMESPACE)
    for app in (OLLAMA, OPENWEBUI):
        wait_for(lambda: missing(core.read_namespaced_persistent_volume_claim, app["claim"], NAMESPACE), timeout=120,
                 what="claim %s deleted" % app["claim"])
        ignore_missing(core.delete_persistent_volume, "dgxlab-apps-%s" % app["claim"])
    ignore_missing(storage.delete_storage_class, LAB_CLASS)
    ignore_missing(core.delete_namespace, NAMESPACE)
    wait_for(lambda: missing(core.read_namespace, NAMESPACE), timeout=120, what="namespace %s deleted" % NAMESPACE)
    for name in (CONTROL, WORKER):
        node(name, "rm -rf %s" % HOST_DIR)


@pytest.fixture(scope="module")
def lab_storage(lab_ready):
    """LAB ONLY: a StorageClass without a provisioner, and one hostPath volume per claim, pre-bound to it (no node
    affinity: the app can move; its data stays on the node it was written on)."""
    core, _apps_api, storage = clients()
    assert missing(core.read_namespace, NAMESPACE), "namespace %s exists before the apps test" % NAMESPACE
    for app in (OLLAMA, OPENWEBUI):
        ignore_missing(core.delete_persistent_volume, "dgxlab-apps-%s" % app["claim"])
    ignore_missing(storage.delete_storage_class, LAB_CLASS)
    wait_for(lambda: all(missing(core.read_persistent_volume, "dgxlab-apps-%s" % app["claim"])
                         for app in (OLLAMA, OPENWEBUI)), timeout=60, what="old LAB volumes gone")
    storage.create_storage_class({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LAB_CLASS, "labels": LAB_LABEL,
                     "annotations": {"description": "LAB ONLY: hostPath volumes made by tests/lab/test_apps.py"}},
        "provisioner": "kubernetes.io/no-provisioner", "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate"})
    for app in (OLLAMA, OPENWEBUI):
        core.create_persistent_volume({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "dgxlab-apps-%s" % app["claim"], "labels": LAB_LABEL},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": LAB_CLASS,
                     "claimRef": {"namespace": NAMESPACE, "name": app["claim"]},
                     "hostPath": {"path": "%s/%s" % (HOST_DIR, app["claim"]), "type": "DirectoryOrCreate"}}})
    yield core
    # Whatever a failed test left (the last test removes everything): the product removes the apps, the API the rest.
    if not missing(core.read_namespace, NAMESPACE):
        apps_run(*TWO, "-e", "app_state=absent")
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
    assert wait_for(lambda: answers(OLLAMA["url"] + "/api/tags"), timeout=60, what="Ollama /api/tags") == {"models": []}
    # A pull through Ollama's API streams its progress, then the model is listed...
    status, headers, body = http(OLLAMA["url"] + "/api/pull", data=json.dumps({"model": MODEL}).encode(), method="POST")
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert status == 200 and headers.get("X-Lab-Standin") == "ollama", (status, headers)
    assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"status": "success"}, lines
    assert any(line.get("completed") == line.get("total") for line in lines if "total" in line), lines
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
