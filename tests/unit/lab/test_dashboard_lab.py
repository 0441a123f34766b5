"""The LAB CHART of the Kubernetes Dashboard (lab/charts/kubernetes-dashboard), the lab inventory that points the
dashboard role at it, and the LAB STAND-IN's kubernetes-dashboard endpoints that its Kong gateway answers.

The chart is rendered with the lab's own helm (built by lab/build-kubernetes.sh under DGXLAB_CACHE) when this machine
has one, with exactly the values the role gives it: it must create the Deployments the role waits on, under the
names the real chart gives them, and the Kong proxy Service the role reaches the Dashboard through.
"""

import glob
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import dashboard as core

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CHART = os.path.join(REPO, "lab", "charts", "kubernetes-dashboard")
STANDIN = os.path.join(REPO, "lab", "app-standin")
SHELL = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["/bin/sh"]
IMAGE = "localhost/dgxlab-app-standin:1"


def _yaml(*path):
    with open(os.path.join(REPO, *path)) as handle:
        return yaml.safe_load(handle)


DEFAULTS = _yaml("roles", "dashboard", "defaults", "main.yml")
LAB = _yaml("inventory", "lab", "hosts.yml")["spark_cluster"]["vars"]


def _helm():
    found = shutil.which("helm")
    if found:
        return found
    cache = os.environ.get("DGXLAB_CACHE", "/var/cache/dgxlab")
    candidates = sorted(glob.glob(os.path.join(cache, "k8s", "*", "bin", "helm")))
    return candidates[-1] if candidates else None


HELM = _helm()


def test_every_file_of_the_lab_chart_says_lab_chart():
    files = [os.path.join(root, name) for root, _dirs, names in os.walk(CHART) for name in names]
    assert sorted(os.path.relpath(path, CHART) for path in files) == ["Chart.yaml", "templates/lab.tpl", "values.yaml"]
    for path in files:
        with open(path) as handle:
            assert "LAB CHART" in handle.read(), path


def test_the_lab_chart_is_the_real_chart_by_name_and_pinned_version_and_the_lab_inventory_uses_it():
    chart = _yaml("lab", "charts", "kubernetes-dashboard", "Chart.yaml")
    assert chart["name"] == "kubernetes-dashboard" == DEFAULTS["dashboard_release_name"]
    assert chart["version"] == DEFAULTS["dashboard_chart_version"]
    assert LAB["dashboard_chart_ref"] == "{{ inventory_dir }}/../../lab/charts/kubernetes-dashboard"
    assert LAB["dashboard_chart_repo_url"] == ""
    assert _yaml("lab", "charts", "kubernetes-dashboard", "values.yaml")["labImage"] == IMAGE
    # The lab's token files stay with the lab (.lab is removed by lab.sh down).
    assert LAB["dashboard_results_dir"].startswith("{{ inventory_dir }}/../../.lab/")


def render(state):
    plan = core.plan(state, address=DEFAULTS["dashboard_address"], extra_values={})
    values = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dashboard-lab-values-%d.yaml" % os.getpid())
    with open(values, "w") as handle:
        yaml.safe_dump(plan["release_values"], handle)
    try:
        out = subprocess.run([HELM, "template", DEFAULTS["dashboard_release_name"], CHART, "--namespace",
                              DEFAULTS["dashboard_namespace"], "--values", values],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    finally:
        os.unlink(values)
    return plan, [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.skipif(HELM is None, reason="no helm on this machine (lab/build-kubernetes.sh builds one)")
def test_started_the_lab_chart_creates_what_the_role_waits_on_and_the_gateway_on_the_address():
    plan, objects = render("started")
    deployments = dict((obj["metadata"]["name"], obj) for obj in objects if obj["kind"] == "Deployment")
    assert sorted(deployments) == sorted(entry["name"] for entry in plan["ready"])
    for entry in plan["ready"]:
        obj = deployments[entry["name"]]
        assert obj["metadata"]["namespace"] == entry["namespace"] and obj["spec"]["replicas"] == 1
        container = obj["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == IMAGE and container["imagePullPolicy"] == "Never"
    service = [obj for obj in objects if obj["kind"] == "Service"]
    assert len(service) == 1 and service[0]["metadata"]["name"] == "kubernetes-dashboard-kong-proxy"
    assert service[0]["spec"]["type"] == "LoadBalancer"
    assert service[0]["metadata"]["annotations"] == {"metallb.io/loadBalancerIPs": DEFAULTS["dashboard_address"]}
    assert service[0]["spec"]["ports"][0]["port"] == 443
    # The gateway: the stand-in answering plain HTTP on the port the Service sends to, ready when it answers.
    kong = deployments["kubernetes-dashboard-kong"]["spec"]["template"]["spec"]["containers"][0]
    env = dict((item["name"], item["value"]) for item in kong["env"])
    assert env["LAB_STANDIN_APP"] == "kubernetes-dashboard"
    assert env["LAB_STANDIN_PORT"] == str(kong["ports"][0]["containerPort"])
    assert service[0]["spec"]["ports"][0]["targetPort"] == kong["ports"][0]["name"]
    assert get(kong["readinessProbe"]["httpGet"]["path"])[0] == "HTTP/1.1 200 OK"


@pytest.mark.skipif(HELM is None, reason="no helm on this machine (lab/build-kubernetes.sh builds one)")
def test_stopped_the_lab_chart_keeps_every_deployment_at_zero_replicas():
    _plan, objects = render("stopped")
    replicas = dict((obj["metadata"]["name"], obj["spec"]["replicas"]) for obj in objects if obj["kind"] == "Deployment")
    assert len(replicas) == 5 and set(replicas.values()) == {0}, replicas


def get(path, app="kubernetes-dashboard"):
    request = ("GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.31\r\n\r\n" % path).encode()
    environment = dict(os.environ, LAB_STANDIN_APP=app)
    result = subprocess.run(SHELL + [os.path.join(STANDIN, "serve")], input=request, env=environment,
                            capture_output=True, check=True, timeout=30)
    head, _blank, body = result.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


def test_the_stand_in_answers_the_dashboard_gateway_labelled():
    status, headers, body = get("/")
    assert status == "HTTP/1.1 200 OK" and headers["X-Lab-Standin"] == "kubernetes-dashboard"
    assert "LAB STAND-IN for Kubernetes Dashboard" in body
    status, _headers, body = get("/api/v1/login/status")
    assert status == "HTTP/1.1 200 OK" and yaml.safe_load(body)["tokenPresent"] is False
    assert get("/api/v1/login/status", app="ollama")[0] == "HTTP/1.1 404 Not Found"
    with open(os.path.join(STANDIN, "entrypoint")) as handle:
        assert "    kubernetes-dashboard) default=8443 ;;\n" in handle.read()
