"""Shared helpers for the lab tests: the two podman Spark nodes of lab/lab.sh, driven through real playbooks.

These tests need the lab (`lab/lab.sh up`); tests/run.sh brings it up fresh before them. They refuse to run
(fail, not skip) when `lab/lab.sh require` says the lab networks are missing: with the lab down the node
addresses would leave this machine.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
LAB = os.path.join(REPO, "lab", "lab.sh")
INVENTORY = os.path.join(REPO, "inventory", "lab", "hosts.yml")
KUBECONFIG = os.path.join(REPO, ".lab", "kubeconfig")
API_URL = "https://192.168.86.38:6443"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Run(object):
    def __init__(self, argv, rc, output, seconds):
        self.argv, self.rc, self.output, self.seconds = argv, rc, output, seconds
        self.recap = dict((m.group(1), {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                        "unreachable": int(m.group(4)), "failed": int(m.group(5))})
                          for m in RECAP.finditer(output))

    @property
    def changed(self):
        return sum(host["changed"] for host in self.recap.values())

    def failures(self):
        """The first failed tasks' blocks: a failure's message is printed above the rescue that ends the run."""
        blocks = ["TASK [" + block for block in self.output.split("\nTASK [")[1:]
                  if re.search(r"^(fatal|failed): \[", block, re.M)]
        return "\n".join(blocks)[:5000]

    def __repr__(self):
        return "rc=%d changed=%d in %.1fs\n--- failed tasks ---\n%s\n--- end of the output ---\n%s" % (
            self.rc, self.changed, self.seconds, self.failures(), self.output[-4000:])


DECISION = re.compile(r"(spark-[0-9a-z]+): (none|restart_kubelet|join|reset_and_join|init|reset)\s+because")


def decisions(output):
    """The membership decisions a run printed (``node: action because ...``), per node in order."""
    found = {}
    for match in DECISION.finditer(output):
        found.setdefault(match.group(1), []).append(match.group(2))
    return found


def flat(output):
    """The output with every run of whitespace made one space: the YAML callback wraps long messages."""
    return " ".join(output.split())


def task_results(output, task):
    """The per-host result words ('ok', 'changed', 'skipping', 'fatal', ...) printed under every TASK whose
    title contains ``task``."""
    words = []
    for block in output.split("\nTASK [")[1:]:
        title, unused_newline, body = block.partition("\n")
        if task in title:
            words.extend(re.findall(r"^(ok|changed|skipping|fatal|failed|included): \[", body, re.M))
    return words


def playbook(name, *extra):
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, os.path.join(REPO, "playbooks", name)] + list(extra)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    started = time.monotonic()
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=1200)
    return Run(argv, result.returncode, result.stdout + result.stderr, time.monotonic() - started)


def lab(*args, check=True):
    return subprocess.run([LAB] + list(args), cwd=REPO, capture_output=True, text=True, check=check, timeout=300)


def node(name, command, check=True):
    """Run a shell command as root inside a lab node (the fault injector's hands)."""
    return lab("exec", name, "sh", "-c", command, check=check)


def kubectl(*args, check=True):
    """The real kubectl on the control-plane node, with its admin kubeconfig."""
    return lab("exec", "spark-2959", "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args, check=check)


# The lab's test image (busybox from Debian, built by lab/build-node-artifacts.sh and imported into every node).
TEST_IMAGE = "localhost/dgxlab-busybox:1"


def http_pod(name, node_name, labels=None):
    """A Pod pinned to ``node_name`` that serves its own name over HTTP on port 8080."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {}, app=name)},
        "spec": {
            "nodeName": node_name,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "http", "image": TEST_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
            }],
        },
    }


def pod_ready(client, name, namespace="default"):
    try:
        pod = client.read_namespaced_pod(name, namespace)
    except Exception:  # pylint: disable=broad-except
        return None
    conditions = dict((c.type, c.status) for c in (pod.status.conditions or []))
    return pod if conditions.get("Ready") == "True" else None


def api():
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=KUBECONFIG, client_configuration=configuration)
    configuration.host = API_URL
    return client.CoreV1Api(client.ApiClient(configuration))


def node_ready(api_client, name):
    try:
        item = api_client.read_node(name)
    except Exception:  # pylint: disable=broad-except
        return None
    for condition in item.status.conditions or []:
        if condition.type == "Ready":
            return condition.status
    return None


def wait_for(predicate, timeout=120, interval=1.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


@pytest.fixture(scope="session")
def lab_ready():
    result = lab("require", check=False)
    assert result.returncode == 0, "the lab is not up (lab/lab.sh up): " + result.stderr
    return True


def record_time(name, seconds, path=os.path.join(REPO, ".lab", "repair-times.json")):
    data = {}
    if os.path.exists(path):
        with open(path) as handle:
            data = json.load(handle)
    data[name] = round(seconds, 1)
    with open(path, "w") as handle:
        json.dump(data, handle, indent=1)


def pytest_collection_modifyitems(items):
    """test_repairs.py builds the cluster from empty nodes: it runs first, whatever order the files are given in."""
    items.sort(key=lambda item: 0 if item.nodeid.split("::")[0].endswith("test_repairs.py") else 1)


def check_cluster(tmp_path, *extra):
    """scripts/check-cluster.sh on the lab: (its process result, the JSON report or None, seconds)."""
    report = tmp_path / "cluster-health.json"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", DGX_SPARK_HEALTH_REPORT=str(report),
               ANSIBLE_PLAYBOOK=os.path.join(BIN, "ansible-playbook"))
    started = time.monotonic()
    script = os.path.join(REPO, "scripts", "check-cluster.sh")
    result = subprocess.run([script, "-i", INVENTORY] + list(extra), cwd=REPO, env=env, capture_output=True,
                            text=True, check=False, timeout=600)
    seconds = time.monotonic() - started
    data = json.loads(report.read_text()) if report.exists() else None
    return result, data, seconds


def ping_seconds():
    """The floor the issue measures against: `ansible all -m ping` on both lab nodes (median of three)."""
    times = []
    for dummy in range(3):
        started = time.monotonic()
        subprocess.run([os.path.join(BIN, "ansible"), "all", "-i", INVENTORY, "-m", "ping"], cwd=REPO,
                       capture_output=True, check=True, timeout=120)
        times.append(time.monotonic() - started)
    return sorted(times)[1]
