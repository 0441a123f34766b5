"""health_io and the cluster_health module: the argv they run (read-only: get and certs check-expiration, never
anything else), a fake runner that answers as kubectl and kubeadm do, failures that become findings, and the
module's main() in check mode (it runs in full: it changes nothing)."""

import base64
import gzip
import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.module_utils import health_io
from ansible_collections.dgx_spark.cluster.plugins.modules import cluster_health

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--request-timeout=20s"]
KUBEADM = ["kubeadm", "certs", "check-expiration", "--kubeconfig", "/etc/kubernetes/admin.conf", "-o", "json"]
REFUSED = "The connection to the server 10.10.10.1:6443 was refused - did you specify the right host or port?\n"


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


READYZ = load("kubectl", "readyz-verbose-k8s-1.2x-homelab.txt")


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


class FakeRunner(object):
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def run(self, argv, check=True, timeout=None, data=None, msg=None):
        self.calls.append(list(argv))
        return self.answer(list(argv))

    def fail(self, msg, argv, rc, out, err, **extra):
        raise FailJson(msg)


def as_list(*items):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def release_secret(name, namespace, revision, status, version):
    record = {"name": name, "version": revision, "info": {"status": status},
              "chart": {"metadata": {"name": name, "version": version}}, "config": {}}
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {"type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, revision), "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "version": str(revision), "status": status}},
            "data": {"release": base64.b64encode(helm).decode()}}


NODES = [{"kind": "Node", "metadata": {"name": "spark-2959"},
          "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.31.14"},
                     "allocatable": {"nvidia.com/gpu": "1"},
                     "addresses": [{"type": "InternalIP", "address": "10.10.10.1"}]}},
         {"kind": "Pod", "metadata": {"name": "etcd-spark-2959", "namespace": "kube-system"},
          "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
         {"kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"type": "ClusterIP"}}]
CERTS = {"kind": "CertificateExpirationInfo", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
         "certificates": [{"name": "apiserver", "expirationDate": "2099-01-01T00:00:00Z", "residualTime": 1,
                           "externallyManaged": False}], "certificateAuthorities": []}


def healthy(argv):
    if argv[0] == "kubeadm":
        return 0, json.dumps(CERTS), ""
    rest = argv[len(KUBECTL):]
    if rest[:2] == ["get", "--raw"]:
        return 0, READYZ, ""
    if rest[:2] == ["get", health_io.OBJECT_KINDS]:
        return 0, as_list(*NODES), ""
    if rest[:2] == ["get", "secret"]:
        return 0, as_list(release_secret("metallb", "metallb-system", 3, "deployed", "0.15.2")), ""
    if rest[:2] == ["get", health_io.LONGHORN_KINDS]:
        return 1, "", 'error: the server doesn\'t have a resource type "nodes"\n'
    raise AssertionError(argv)


PARAMS = {"nodes": [{"name": "spark-2959", "gpus": 1, "address": "10.10.10.1/24"}],
          "addons": [{"name": "metallb", "enabled": True, "release_name": "metallb",
                      "release_namespace": "metallb-system", "namespaces": ["metallb-system"]},
                     {"name": "gpu-operator", "enabled": False, "release_name": "gpu-operator",
                      "release_namespace": "gpu-operator", "namespaces": ["gpu-operator"]}],
          "longhorn_namespace": "longhorn-system", "certificates": True}


def reader(answer):
    runner = FakeRunner(answer)
    return health_io.Reader(runner, "kubectl", "/etc/kubernetes/admin.conf", "kubeadm"), runner


def test_gather_runs_five_read_only_calls_and_no_other():
    read, runner = reader(healthy)
    inputs = health_io.gather(read, PARAMS)
    assert sorted(runner.calls) == sorted([
        KUBECTL + ["get", "nodes,pods,deployments.apps,daemonsets.apps,services", "-A", "-o", "json"],
        KUBECTL + ["get", "--raw", "/readyz?verbose"],
        # Only the enabled add-ons' releases.
        KUBECTL + ["get", "secret", "-A", "-l", "owner=helm,status!=superseded,name in (metallb)", "-o", "json"],
        KUBECTL + ["get", "nodes.longhorn.io,volumes.longhorn.io", "-n", "longhorn-system", "-o", "json"],
        KUBEADM])
    for argv in runner.calls:
        verb = argv[len(KUBECTL)] if argv[0] == "kubectl" else argv[1:3]
        assert verb in ("get", ["certs", "check-expiration"]), argv
    assert [n["metadata"]["name"] for n in inputs["nodes"]] == ["spark-2959"]
    assert [p["metadata"]["name"] for p in inputs["pods"]] == ["etcd-spark-2959"]
    assert inputs["releases"][("metallb-system", "metallb")]["chart_version"] == "0.15.2"
    assert inputs["longhorn_nodes"] is None and inputs["longhorn_expected"] is True
    assert inputs["certificates"] == CERTS


def test_without_addons_longhorn_or_certificates_only_two_calls():
    read, runner = reader(healthy)
    inputs = health_io.gather(read, {"nodes": [], "addons": [], "certificates": False})
    assert len(runner.calls) == 2
    assert inputs["certificates_error"] == "turned off (certificates: false)"


def test_an_api_that_does_not_answer_is_a_finding_not_a_module_failure():
    def down(argv):
        if argv[0] == "kubeadm":
            return 0, json.dumps(CERTS), ""
        return 1, "", REFUSED
    read, unused_runner = reader(down)
    inputs = health_io.gather(read, PARAMS)
    assert "nodes" not in inputs and inputs["objects_error"] == REFUSED.strip()
    assert inputs["readyz_error"] == REFUSED.strip() and inputs["releases"] is None


def test_a_failing_readyz_returns_kubectls_error_text_as_the_answer():
    body = 'Error from server (InternalError): an error on the server ("[+]ping ok\\n[-]etcd failed: reason ' \
           'withheld\\nreadyz check failed") has prevented the request from succeeding\n'
    read, unused_runner = reader(lambda argv: (1, "", body))
    text, error = read.readyz()
    assert text == body and error.startswith("Error from server (InternalError)")


# --- the module ----------------------------------------------------------------------------------------------------

def run_module(args, answer, monkeypatch, check_mode=False):
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    calls, warnings = [], []

    def run_command(self, argv, data=None, **kwargs):
        argv = list(argv)
        if os.path.basename(argv[0]) == "timeout":
            argv = argv[3:]
        argv[0] = os.path.basename(argv[0])
        calls.append(argv)
        return answer(argv)

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            cluster_health.main()
    return caught.value, calls, warnings


@pytest.mark.parametrize("check_mode", [False, True])
def test_module_runs_in_full_in_check_mode_and_changes_nothing(monkeypatch, check_mode):
    args = dict(PARAMS, addons=PARAMS["addons"][:1])
    outcome, calls, warnings = run_module(args, healthy, monkeypatch, check_mode=check_mode)
    assert isinstance(outcome, ExitJson)
    result = outcome.args[0]
    assert result["changed"] is False
    assert len(calls) == 5 and all(c[0] in ("kubectl", "kubeadm") for c in calls)
    # Longhorn expected but its objects unreadable: not checked; no verdicts recorded: not checked.
    assert result["status"] == "healthy" and result["exit_code"] == 0 and warnings == []
    assert result["counts"]["unknown"] == 3
    assert result["report"]["status"] == "healthy" and result["report"]["text"] == result["text"]
    assert result["text"].splitlines()[0].startswith("cluster health: HEALTHY")


def test_module_warns_when_degraded_and_takes_a_recorded_nccl_verdict(monkeypatch):
    args = dict(PARAMS, nodes=[{"name": "spark-2959", "gpus": 2}],
                nccl_verdict={"passed": False, "avg_busbw_gbs": 3.0, "failures": ["below 20.00"]})
    outcome, unused_calls, warnings = run_module(args, healthy, monkeypatch)
    result = outcome.args[0]
    assert result["status"] == "degraded" and result["exit_code"] == 1
    assert warnings == ["cluster health is DEGRADED: " + "; ".join(result["degradations"])]
    assert "nodes spark-2959: Ready, kubelet v1.31.14, GPUs 1; GPUs allocatable 1 of 2 expected" in \
        result["degradations"]
    assert any(line.startswith("nccl nccl-tests: last verdict FAILED") for line in result["degradations"])


def test_module_reports_a_down_api_as_failed(monkeypatch):
    outcome, unused_calls, unused_warnings = run_module(PARAMS, lambda argv: (1, "", REFUSED), monkeypatch)
    result = outcome.args[0]
    assert isinstance(outcome, ExitJson) and result["status"] == "failed" and result["exit_code"] == 2
    assert result["failures"][0] == "api /readyz: the API did not answer: " + REFUSED.strip()


def test_module_returns_the_nodes_it_read_and_warns_only_when_asked(monkeypatch):
    args = dict(PARAMS, nodes=[{"name": "spark-2959", "gpus": 2}], warn=False)
    outcome, unused_calls, warnings = run_module(args, healthy, monkeypatch)
    result = outcome.args[0]
    assert result["status"] == "degraded" and warnings == []
    assert [node["metadata"]["name"] for node in result["api_nodes"]] == ["spark-2959"]
    assert all("managedFields" not in node["metadata"] and "images" not in node["status"]
               for node in result["api_nodes"])


def test_module_returns_no_nodes_when_the_api_does_not_answer(monkeypatch):
    outcome, unused_calls, unused_warnings = run_module(PARAMS, lambda argv: (1, "", REFUSED), monkeypatch)
    assert outcome.args[0]["api_nodes"] is None
