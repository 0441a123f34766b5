"""addons_io: the kubectl calls behind addon_status, with a fake runner that answers as kubectl does (JSON lists,
empty output for --ignore-not-found misses, the real error text for a kind the API does not serve)."""

import base64
import gzip
import json

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons_io

KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--request-timeout=20s"]


class Failed(Exception):
    pass


class FakeRunner(object):
    """Answers kubectl argv with canned (rc, stdout, stderr) by a function of the argv after the common prefix."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def run(self, argv, check=True, timeout=None, data=None, msg=None):
        assert argv[:len(KUBECTL)] == KUBECTL, argv
        rest = argv[len(KUBECTL):]
        self.calls.append((rest, data))
        return self.answer(rest, data)

    def fail(self, msg, argv, rc, out, err, **extra):
        raise Failed(msg, err)


def release_secret(name, namespace, revision, status, version, values):
    record = {"name": name, "version": revision, "info": {"status": status},
              "chart": {"metadata": {"name": name, "version": version}}, "config": values}
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {"type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, revision), "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "version": str(revision), "status": status}},
            "data": {"release": base64.b64encode(helm).decode()}}


def daemonset(name, namespace, ready, desired=2):
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": desired, "numberReady": ready,
                       "updatedNumberScheduled": desired, "numberAvailable": ready}}


def as_list(*items):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def reader(answer):
    runner = FakeRunner(answer)
    return addons_io.Reader(runner, "kubectl", "/etc/kubernetes/admin.conf"), runner


def test_objects_are_read_with_one_call_per_namespace_and_misses_are_absent():
    def answer(rest, data):
        if "-n" in rest and rest[rest.index("-n") + 1] == "metallb-system":
            return 0, as_list(daemonset("metallb-speaker", "metallb-system", 2)), ""
        return 0, "", ""  # --ignore-not-found with nothing found prints nothing
    read, runner = reader(answer)
    refs = [{"api_version": "apps/v1", "kind": "DaemonSet", "name": "metallb-speaker", "namespace": "metallb-system"},
            {"api_version": "apps/v1", "kind": "Deployment", "name": "metallb-controller",
             "namespace": "metallb-system"},
            {"api_version": "node.k8s.io/v1", "kind": "RuntimeClass", "name": "nvidia"}]
    found = read.objects(refs, parallel=True)
    assert sorted(found) == [("DaemonSet", "metallb-system", "metallb-speaker")]
    argvs = sorted(rest for rest, _data in runner.calls)
    assert argvs == [
        ["get", "daemonset.apps/metallb-speaker", "deployment.apps/metallb-controller", "--ignore-not-found",
         "-n", "metallb-system", "-o", "json"],
        ["get", "runtimeclass.node.k8s.io/nvidia", "--ignore-not-found", "-o", "json"]]


def test_a_kind_the_api_does_not_serve_yet_counts_as_absent():
    def answer(rest, data):
        if any(name.startswith("ipaddresspool") for name in rest):
            return 1, "", 'error: the server doesn\'t have a resource type "ipaddresspool"\n'
        return 0, as_list(daemonset("metallb-speaker", "metallb-system", 1)), ""
    read, runner = reader(answer)
    refs = [{"api_version": "metallb.io/v1beta1", "kind": "IPAddressPool", "name": "lan-pool",
             "namespace": "metallb-system"},
            {"api_version": "apps/v1", "kind": "DaemonSet", "name": "metallb-speaker", "namespace": "metallb-system"}]
    found = read.objects(refs)
    assert list(found) == [("DaemonSet", "metallb-system", "metallb-speaker")]
    assert [rest[1:-5] for rest, _data in runner.calls] == [
        ["ipaddresspool.metallb.io/lan-pool", "daemonset.apps/metallb-speaker"], ["daemonset.apps/metallb-speaker"]]


def test_any_other_kubectl_error_fails_naming_what_it_read():
    read, _runner = reader(lambda rest, data: (1, "", "Unable to connect to the server: dial tcp: i/o timeout"))
    with pytest.raises(Failed) as caught:
        read.objects([{"api_version": "v1", "kind": "ConfigMap", "name": "kube-proxy", "namespace": "kube-system"}])
    assert caught.value.args[0] == "kubectl could not read configmap/kube-proxy"


def test_releases_come_from_one_secret_read_and_the_newest_revision_wins():
    secrets = [release_secret("metallb", "metallb-system", 1, "failed", "0.15.1", {}),
               release_secret("metallb", "metallb-system", 2, "deployed", "0.15.2", {"speaker": {"frr": {"enabled": False}}}),
               release_secret("calico", "tigera-operator", 1, "deployed", "v3.30.3", {})]
    read, runner = reader(lambda rest, data: (0, as_list(*secrets), ""))
    found = read.releases([{"name": "metallb", "namespace": "metallb-system"},
                           {"name": "calico", "namespace": "tigera-operator"}])
    assert runner.calls[0][0] == ["get", "secret", "-A", "-l", "owner=helm,status!=superseded,name in (calico,metallb)",
                                  "-o", "json"]
    assert found[("metallb-system", "metallb")]["chart_version"] == "0.15.2"
    assert found[("metallb-system", "metallb")]["values"] == {"speaker": {"frr": {"enabled": False}}}
    assert found[("tigera-operator", "calico")]["status"] == "deployed"


def test_status_of_many_judges_each_addon_from_shared_reads():
    values = {"speaker": {"frr": {"enabled": False}}}
    secrets = [release_secret("metallb", "metallb-system", 2, "deployed", "0.15.2", values)]

    def answer(rest, data):
        if rest[:2] == ["get", "secret"]:
            return 0, as_list(*secrets), ""
        if "metallb-system" in rest:
            return 0, as_list(daemonset("metallb-speaker", "metallb-system", 1)), ""
        return 0, "", ""
    read, runner = reader(answer)
    specs = [{"label": "MetalLB", "release": {"name": "metallb", "namespace": "metallb-system", "chart": "metallb",
                                              "version": "0.15.2", "values": values},
              "ready": [{"kind": "DaemonSet", "name": "metallb-speaker", "namespace": "metallb-system"}],
              "objects": [], "kube_proxy": True},
             {"label": "Longhorn", "release": {"name": "longhorn", "namespace": "longhorn-system", "chart": "longhorn",
                                               "version": "1.9.1", "values": {}},
              "ready": [{"kind": "StorageClass", "name": "longhorn"}], "objects": [], "kube_proxy": False}]
    verdicts = addons_io.status_of_many(read, specs)
    assert verdicts["MetalLB"]["install"] is False
    assert verdicts["MetalLB"]["not_ready"] == ["DaemonSet metallb-system/metallb-speaker: 1/2 pods ready"]
    assert verdicts["MetalLB"]["kube_proxy"] is None  # kube-proxy's ConfigMap absent in this fake
    assert verdicts["Longhorn"]["install"] is True
    assert verdicts["Longhorn"]["install_reasons"] == ["the release is not installed"]
    assert verdicts["Longhorn"]["not_ready"] == ["StorageClass longhorn: does not exist yet"]
    # One Secret read for both releases, then one read per namespace (metallb-system, kube-system, cluster scope).
    assert len(runner.calls) == 4


def test_status_and_nodes_reads_the_nodes_beside_the_addons_and_gives_none_when_that_read_fails():
    node = {"kind": "Node", "metadata": {"name": "spark-ba63"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    specs = [{"label": "Longhorn", "release": {"name": "longhorn", "namespace": "longhorn-system",
                                               "chart": "longhorn", "version": "1.9.1", "values": {}},
              "ready": [{"kind": "StorageClass", "name": "longhorn"}], "objects": [], "kube_proxy": False}]

    def answer(rest, data):
        if rest[:2] == ["get", "nodes"]:
            return 0, as_list(node), ""
        return 0, "", ""
    read, runner = reader(answer)
    verdicts, nodes = addons_io.status_and_nodes(read, specs)
    assert nodes == [node]
    assert verdicts["Longhorn"]["install"] is True
    assert (["get", "nodes", "-o", "json"], None) in runner.calls

    def refused(rest, data):
        if rest[:2] == ["get", "nodes"]:
            return 1, "", "Error from server (Forbidden): nodes is forbidden"
        return 0, "", ""
    read, dummy = reader(refused)
    verdicts, nodes = addons_io.status_and_nodes(read, specs)
    assert nodes is None  # the worker play then reads the Nodes itself
    assert verdicts["Longhorn"]["install"] is True


def test_the_wait_offers_drifted_objects_to_a_dry_run_until_the_webhook_answers():
    pool = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "lan-pool", "namespace": "metallb-system"},
            "spec": {"addresses": ["192.168.86.200-192.168.86.220"]}}
    refused = ['Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed '
               'calling webhook "ipaddresspoolvalidationwebhook.metallb.io": failed to call webhook: connect: '
               'connection refused']
    answers = {"dry": [(1, "", "\n".join(refused) + "\n"), (0, "ipaddresspool.metallb.io/lan-pool created", "")]}

    def answer(rest, data):
        if rest[0] == "apply":
            assert rest == ["apply", "--dry-run=server", "-o", "name", "-f", "-"]
            assert json.loads(data)["items"] == [pool]
            return answers["dry"].pop(0)
        return 0, "", ""
    read, runner = reader(answer)
    now = [0.0]
    result = addons_io.status(read, {"ready": [], "objects": [pool], "admission_check": True, "wait_timeout": 30},
                              clock=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    assert result["ready"] is True and result["waited"] == 3
    assert [d["name"] for d in result["drift"]] == ["lan-pool"]


def test_the_wait_ends_at_its_limit_with_what_is_still_not_ready():
    read, _runner = reader(lambda rest, data: (0, as_list(daemonset("calico-node", "calico-system", 0)), ""))
    now = [0.0]
    result = addons_io.status(read, {"ready": [{"kind": "DaemonSet", "name": "calico-node",
                                                "namespace": "calico-system"}], "wait_timeout": 10},
                              clock=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    assert result["ready"] is False and result["waited"] == 12
    assert result["not_ready"] == ["DaemonSet calico-system/calico-node: 0/2 pods ready"]
