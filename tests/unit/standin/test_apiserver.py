# -*- coding: utf-8 -*-
# Tests of the TEST STAND-IN API server (tests/standin/apiserver.py), which is NOT Kubernetes. They drive it with the
# real kubernetes Python client (DynamicClient, CoreV1Api) and with raw HTTPS, on 127.0.0.1 only.
"""API stand-in: discovery, CRUD, patches, selectors, eviction/PDB, auth, persistence, node lifecycle."""

import base64
import json
import os
import subprocess
import time

import pytest

from standin_testlib import ApiServer, C, fixture_text, wait_for

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.dynamic.exceptions import ApiException, ConflictError, NotFoundError  # noqa: E402


def status_of(exc):
    return json.loads(exc.body)


def test_discovery_version_and_resources(dyn, apiserver):
    for api_version, kind in (("v1", "Node"), ("v1", "Pod"), ("v1", "Namespace"), ("v1", "Secret"), ("v1", "Event"),
                              ("v1", "ConfigMap"), ("policy/v1", "PodDisruptionBudget"),
                              ("coordination.k8s.io/v1", "Lease"),
                              ("certificates.k8s.io/v1", "CertificateSigningRequest")):
        res = dyn.resources.get(api_version=api_version, kind=kind)
        assert res.kind == kind
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert {"eviction", "status", "binding"} <= set(pods.subresources)
    assert pods.subresources["eviction"].kind == "Eviction"
    assert dyn.resources.get(api_version="v1", kind="Node").namespaced is False
    assert dyn.version["kubernetes"]["gitVersion"] == "v1.31.4"
    # an aggregated-discovery Accept header still gets the legacy answer, which the client understands
    st, body = apiserver.client().request("GET", "/apis", raw=True)
    assert st == 200 and json.loads(body)["kind"] == "APIGroupList"
    names = {n.metadata.name for n in dyn.resources.get(api_version="v1", kind="Namespace").get().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_health_endpoints_match_real_format(apiserver):
    anon = apiserver.client(None)
    assert anon.request("GET", "/healthz", raw=True) == (200, b"ok")
    assert anon.request("GET", "/livez", raw=True) == (200, b"ok")
    st, body = anon.request("GET", "/readyz", query={"verbose": ""}, raw=True)
    assert st == 200
    # same checks, order and wording as a real kube-apiserver's /readyz?verbose (captured fixture)
    assert body.decode() == fixture_text("kubectl-readyz-verbose-k8s-1.2x-homelab.txt")
    st, body = anon.request("GET", "/livez", query={"verbose": ""}, raw=True)
    assert body.decode().endswith("livez check passed\n")


def test_authentication_and_authorization(apiserver, pki):
    anon = apiserver.client(None)
    with pytest.raises(C.ApiError) as e:
        anon.request("GET", "/api/v1/nodes")
    # like kube-apiserver with the default --anonymous-auth=true: authenticated as system:anonymous, then forbidden
    assert e.value.status == 403
    assert e.value.body["message"] == ('nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in '
                                       'API group "" at the cluster scope')
    with pytest.raises(C.ApiError) as e:
        apiserver.client(token="abcdef.0123456789abcdef").request("GET", "/api/v1/nodes/x")
    assert e.value.status == 401 and e.value.body == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                      "status": "Failure", "message": "Unauthorized",
                                                      "reason": "Unauthorized", "code": 401}
    # a kubeadm bootstrap token (Secret bootstrap-token-<id> in kube-system) authenticates as system:bootstrap:<id>
    admin = apiserver.client()
    data = {"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true", "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}
    admin.request("POST", "/api/v1/namespaces/kube-system/secrets", {
        "metadata": {"name": "bootstrap-token-abcdef"}, "type": "bootstrap.kubernetes.io/token",
        "stringData": data})
    boot = apiserver.client(token="abcdef.0123456789abcdef")
    with pytest.raises(C.ApiError) as e:
        boot.request("GET", "/api/v1/nodes/spark-ba63")
    assert e.value.status == 404  # allowed to look at Nodes (kubeadm:get-nodes), the Node is just absent
    with pytest.raises(C.ApiError) as e:
        boot.request("GET", "/api/v1/namespaces/kube-system/secrets")
    assert e.value.status == 403 and "system:bootstrap:abcdef" in e.value.body["message"]
    with pytest.raises(C.ApiError) as e:
        apiserver.client(token="abcdef.0123456789abcdeX").request("GET", "/api/v1/nodes/x")
    assert e.value.status == 401
    # an expired token no longer authenticates (and the token cleaner removes it)
    admin.request("PATCH", "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef",
                  {"data": {"expiration": base64.b64encode(b"2000-01-01T00:00:00Z").decode()}},
                  content_type="application/merge-patch+json")
    with pytest.raises(C.ApiError) as e:
        boot.request("GET", "/api/v1/nodes/x")
    assert e.value.status == 401
    # a node identity may not touch another Node
    node = apiserver.client("node_a")
    with pytest.raises(C.ApiError) as e:
        node.request("POST", "/api/v1/nodes", {"metadata": {"name": "spark-2959"}})
    assert e.value.status == 403


def test_anonymous_auth_false_gives_401(pki, tmp_path):
    srv = ApiServer(pki, str(tmp_path / "data"), ["--anonymous-auth=false"])
    srv.port = C.free_port()
    srv.server = "https://127.0.0.1:%d" % srv.port
    try:
        # health is only reachable with credentials then; start() polls anonymously, so poll with the admin cert
        srv.extra.append("--v=0")
        try:
            srv.start()
        except RuntimeError:
            pass
        wait_for(lambda: srv.client().request("GET", "/healthz", raw=True)[0] == 200, what="apiserver")
        with pytest.raises(C.ApiError) as e:
            srv.client(None).request("GET", "/api/v1/nodes")
        assert e.value.status == 401
    finally:
        srv.stop()


def test_crud_status_objects_and_metadata(dyn):
    ns = dyn.resources.get(api_version="v1", kind="Namespace")
    cm = dyn.resources.get(api_version="v1", kind="ConfigMap")
    ns.create(body={"metadata": {"name": "crud"}})
    obj = cm.create(namespace="crud", body={"metadata": {"name": "c1", "labels": {"a": "1"}}, "data": {"k": "v"}})
    md = obj.metadata
    assert md.uid and md.resourceVersion and md.creationTimestamp and md.generation == 1
    with pytest.raises(ConflictError) as e:
        cm.create(namespace="crud", body={"metadata": {"name": "c1"}})
    assert status_of(e.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": 'configmaps "c1" already exists', "reason": "AlreadyExists",
                                  "details": {"name": "c1", "kind": "configmaps"}, "code": 409}
    with pytest.raises(NotFoundError) as e:
        cm.get(namespace="crud", name="nope")
    assert status_of(e.value)["message"] == 'configmaps "nope" not found'
    assert status_of(e.value)["reason"] == "NotFound"
    # replace with a stale resourceVersion -> 409 Conflict, like the real optimistic concurrency
    stale = obj.to_dict()
    cm.replace(namespace="crud", body=dict(stale, data={"k": "v2"}))
    with pytest.raises(ConflictError) as e:
        cm.replace(namespace="crud", body=dict(stale, data={"k": "v3"}))
    assert status_of(e.value)["reason"] == "Conflict"
    # patches: strategic merge, merge, json
    got = cm.patch(namespace="crud", name="c1", body={"metadata": {"labels": {"b": "2"}}})
    assert got.metadata.labels.to_dict() == {"a": "1", "b": "2"} and got.metadata.generation == 2
    got = cm.patch(namespace="crud", name="c1", body={"metadata": {"labels": {"a": None}}},
                   content_type="application/merge-patch+json")
    assert got.metadata.labels.to_dict() == {"b": "2"}
    got = cm.patch(namespace="crud", name="c1", body=[{"op": "add", "path": "/data/j", "value": "x"}],
                   content_type="application/json-patch+json")
    assert got.data.j == "x"
    # a patch that changes nothing does not bump resourceVersion (kubernetes.core relies on this for changed=false)
    again = cm.patch(namespace="crud", name="c1", body={"data": {"j": "x"}})
    assert again.metadata.resourceVersion == got.metadata.resourceVersion
    # delete returns a Status for most kinds; the object is gone
    out = cm.delete(namespace="crud", name="c1")
    assert out.status == "Success" and out.details.name == "c1"
    with pytest.raises(NotFoundError):
        cm.get(namespace="crud", name="c1")
    # creating in a namespace that does not exist
    with pytest.raises(NotFoundError) as e:
        cm.create(namespace="nowhere", body={"metadata": {"name": "x"}})
    assert status_of(e.value)["message"] == 'namespaces "nowhere" not found'


def test_secret_string_data_and_validation(dyn):
    sec = dyn.resources.get(api_version="v1", kind="Secret")
    s = sec.create(namespace="default", body={"metadata": {"name": "s1"}, "stringData": {"a": "b"}})
    assert s.type == "Opaque" and s.data.a == base64.b64encode(b"b").decode() and not s.get("stringData")
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    with pytest.raises(ApiException) as e:
        pods.create(namespace="default", body={"metadata": {"name": "bad"}, "spec": {}})
    body = status_of(e.value)
    assert e.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == 'Pod "bad" is invalid: spec.containers: Required value'
    with pytest.raises(ApiException) as e:
        dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": "Bad_Name"}})
    assert e.value.status == 422


def test_label_and_field_selectors(dyn, apiserver):
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    ns = dyn.resources.get(api_version="v1", kind="Namespace")
    ns.create(body={"metadata": {"name": "sel"}})
    for name, labels, node in (("p1", {"app": "a", "tier": "web"}, "n1"), ("p2", {"app": "b"}, "n2"),
                               ("p3", {"app": "c", "tier": "db"}, "n1")):
        pods.create(namespace="sel", body={"metadata": {"name": name, "labels": labels},
                                           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i:1"}]}})

    def names(**kw):
        return sorted(p.metadata.name for p in pods.get(namespace="sel", **kw).items)

    assert names(label_selector="app=a") == ["p1"]
    assert names(label_selector="app!=a") == ["p2", "p3"]
    assert names(label_selector="app in (a, c)") == ["p1", "p3"]
    assert names(label_selector="app notin (a)") == ["p2", "p3"]
    assert names(label_selector="tier") == ["p1", "p3"]
    assert names(label_selector="!tier") == ["p2"]
    assert names(label_selector="tier,app=c") == ["p3"]
    assert names(field_selector="spec.nodeName=n1") == ["p1", "p3"]
    assert names(field_selector="metadata.name=p2") == ["p2"]
    assert names(field_selector="metadata.name!=p2,spec.nodeName=n1") == ["p1", "p3"]
    allns = pods.get(field_selector="spec.nodeName=n2")
    assert [p.metadata.name for p in allns.items] == ["p2"]
    with pytest.raises(ApiException) as e:
        pods.get(namespace="sel", field_selector="spec.bogus=1")
    assert e.value.status == 400 and status_of(e.value)["message"] == "field label not supported: spec.bogus"
    # list items carry no kind/apiVersion, like the real API; the list does
    raw = apiserver.client().request("GET", "/api/v1/namespaces/sel/pods", query={"limit": "2"})
    assert raw["kind"] == "PodList" and "kind" not in raw["items"][0] and raw["metadata"]["continue"]
    rest = apiserver.client().request("GET", "/api/v1/namespaces/sel/pods",
                                      query={"limit": "2", "continue": raw["metadata"]["continue"]})
    assert [p["metadata"]["name"] for p in rest["items"]] == ["p3"]


def _ready_pod(pods, ns, name, labels, node="spark-ba63", grace=30):
    pods.create(namespace=ns, body={"metadata": {"name": name, "labels": labels},
                                    "spec": {"nodeName": node, "terminationGracePeriodSeconds": grace,
                                             "containers": [{"name": "c", "image": "i:1"}]}})
    pods.status.patch(namespace=ns, name=name, content_type="application/merge-patch+json",
                      body={"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def test_eviction_with_pdb_and_graceful_deletion(dyn, apiserver):
    core = kubernetes.client.CoreV1Api(dyn.client)
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    pdbs = dyn.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
    dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": "ev"}})
    _ready_pod(pods, "ev", "web-1", {"app": "web"})
    _ready_pod(pods, "ev", "web-2", {"app": "web"}, grace=0)
    pdbs.create(namespace="ev", body={"metadata": {"name": "web-pdb"},
                                      "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    body = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name="web-1", namespace="ev"))
    with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
        core.create_namespaced_pod_eviction(name="web-1", namespace="ev", body=body)
    assert e.value.status == 429 and e.value.headers["Content-Type"] == "application/json"
    st = json.loads(e.value.body)
    assert st["reason"] == "TooManyRequests"
    assert st["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert st["details"]["causes"] == [{"reason": "DisruptionBudget", "message": "The disruption budget web-pdb "
                                        "needs 2 healthy pods and has 2 currently"}]
    wait_for(lambda: (pdbs.get(namespace="ev", name="web-pdb").status or {}).get("expectedPods") == 2,
             what="PDB status")
    pdb = pdbs.get(namespace="ev", name="web-pdb")
    assert pdb.status.disruptionsAllowed == 0 and pdb.status.currentHealthy == 2
    pdbs.patch(namespace="ev", name="web-pdb", body={"spec": {"minAvailable": 1}})
    core.create_namespaced_pod_eviction(name="web-1", namespace="ev", body=body)
    # a pod bound to a node is deleted gracefully: it stays, Terminating, until its kubelet confirms
    p = pods.get(namespace="ev", name="web-1")
    assert p.metadata.deletionTimestamp and p.metadata.deletionGracePeriodSeconds == 30
    # the second eviction is now blocked (1 healthy, 1 required; the terminating pod no longer counts)
    body2 = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name="web-2", namespace="ev"))
    with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
        core.create_namespaced_pod_eviction(name="web-2", namespace="ev", body=body2)
    assert e.value.status == 429
    # force deletion (grace 0) removes it at once
    pods.delete(namespace="ev", name="web-1", body={"gracePeriodSeconds": 0})
    with pytest.raises(NotFoundError):
        pods.get(namespace="ev", name="web-1")
    with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
        core.create_namespaced_pod_eviction(name="gone", namespace="ev", body=body2)
    assert e.value.status == 404 and e.value.reason == "Not Found"


def test_namespace_deletion_and_protected_namespaces(dyn):
    nsr = dyn.resources.get(api_version="v1", kind="Namespace")
    cm = dyn.resources.get(api_version="v1", kind="ConfigMap")
    nsr.create(body={"metadata": {"name": "gone"}})
    cm.create(namespace="gone", body={"metadata": {"name": "x"}})
    out = nsr.delete(name="gone")
    assert out.status.phase == "Terminating"
    with pytest.raises(ApiException) as e:
        cm.create(namespace="gone", body={"metadata": {"name": "y"}})
    assert e.value.status == 403 or e.value.status == 404
    wait_for(lambda: "gone" not in {n.metadata.name for n in nsr.get().items}, what="namespace finalized")
    with pytest.raises(ApiException) as e:
        nsr.delete(name="kube-system")
    assert e.value.status == 403
    assert status_of(e.value)["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'


def test_node_lifecycle_grace_marks_unknown_and_taints(dyn):
    nodes = dyn.resources.get(api_version="v1", kind="Node")
    nodes.create(body={"metadata": {"name": "hb-node"}})
    now = C.rfc3339()
    nodes.status.patch(name="hb-node", body={"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
    wait_for(lambda: not (nodes.get(name="hb-node").spec.taints or []), what="no taints while Ready")

    # no heartbeat for longer than the grace period (2 s here; 40 s by default) -> Unknown, like the real controller
    def unknown():
        n = nodes.get(name="hb-node")
        return n if [c for c in n.status.conditions if c.type == "Ready"][0].status == "Unknown" else None

    node = wait_for(unknown, timeout=8, what="Ready=Unknown")
    ready = [c for c in node.status.conditions if c.type == "Ready"][0]
    assert ready.reason == "NodeStatusUnknown" and ready.message == "Kubelet stopped posting node status."
    assert ready.lastHeartbeatTime == now

    def two_taints():
        n = nodes.get(name="hb-node")
        return n if n.spec.taints and len(n.spec.taints) == 2 else None

    node = wait_for(two_taints, what="unreachable taints")
    assert sorted((t.key, t.effect) for t in node.spec.taints) == [("node.kubernetes.io/unreachable", "NoExecute"),
                                                                   ("node.kubernetes.io/unreachable", "NoSchedule")]
    evs = dyn.resources.get(api_version="v1", kind="Event").get(
        namespace="default", field_selector="involvedObject.name=hb-node,reason=NodeNotReady")
    assert evs.items and evs.items[0].message == "Node hb-node status is now: NodeNotReady"
    # a kubelet heartbeat brings it back, and the node controller removes its taints
    now = C.rfc3339()
    nodes.status.patch(name="hb-node", body={"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
    wait_for(lambda: not (nodes.get(name="hb-node").spec.taints or []), what="taints removed")
    # cordon -> unschedulable taint
    nodes.patch(name="hb-node", body={"spec": {"unschedulable": True}})
    wait_for(lambda: [t.key for t in nodes.get(name="hb-node").spec.taints or []] ==
             ["node.kubernetes.io/unschedulable"], what="unschedulable taint")


def test_owner_gc_pod_gc_and_scheduler(dyn):
    nodes = dyn.resources.get(api_version="v1", kind="Node")
    leases = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    n = nodes.create(body={"metadata": {"name": "gc-node", "labels": {"gpu": "yes"}}})
    now = C.rfc3339()
    nodes.status.patch(name="gc-node", body={"status": {"conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
    owner = {"apiVersion": "v1", "kind": "Node", "name": "gc-node", "uid": n.metadata.uid}
    leases.create(namespace="kube-node-lease", body={
        "metadata": {"name": "gc-node", "ownerReferences": [owner]},
        "spec": {"holderIdentity": "gc-node", "renewTime": C.rfc3339_micro()}})
    # the trivial scheduler binds a Pending pod to a Ready node that matches its nodeSelector
    pods.create(namespace="default", body={"metadata": {"name": "sched"}, "spec": {
        "nodeSelector": {"gpu": "yes"}, "containers": [{"name": "c", "image": "i:1"}]}})
    wait_for(lambda: pods.get(namespace="default", name="sched").spec.nodeName == "gc-node", what="scheduled")
    pods.create(namespace="default", body={"metadata": {"name": "nofit"}, "spec": {
        "nodeSelector": {"gpu": "no"}, "containers": [{"name": "c", "image": "i:1"}]}})
    cond = wait_for(lambda: [c for c in (pods.get(namespace="default", name="nofit").status.conditions or [])
                             if c.type == "PodScheduled"], what="Unschedulable")
    assert cond[0].status == "False" and cond[0].reason == "Unschedulable"
    nodes.delete(name="gc-node")
    # the Lease owned by the Node is garbage-collected; pods bound to a deleted Node are removed by pod GC
    wait_for(lambda: not [x for x in leases.get(namespace="kube-node-lease").items if x.metadata.name == "gc-node"],
             what="lease GC")
    wait_for(lambda: not [p for p in pods.get(namespace="default").items if p.metadata.name == "sched"],
             timeout=8, what="pod GC")


def test_dry_run_and_csr_signing(dyn, apiserver, pki, tmp_path):
    cm = dyn.resources.get(api_version="v1", kind="ConfigMap")
    out = cm.create(namespace="default", body={"metadata": {"name": "dry"}}, dry_run="All")
    assert out.metadata.name == "dry"
    with pytest.raises(NotFoundError):
        cm.get(namespace="default", name="dry")
    # TLS bootstrap: a bootstrap token posts a CSR for system:node:<name>; it is auto-approved and signed by the CA
    admin = apiserver.client()
    admin.request("POST", "/api/v1/namespaces/kube-system/secrets", {
        "metadata": {"name": "bootstrap-token-csrtok"}, "type": "bootstrap.kubernetes.io/token",
        "stringData": {"token-id": "csrtok", "token-secret": "0123456789abcdef",
                       "usage-bootstrap-authentication": "true"}})
    boot = apiserver.client(token="csrtok.0123456789abcdef")
    key, csr = C.gen_key_csr("system:node:spark-ba63", ["system:nodes"])
    obj = boot.request("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", {
        "metadata": {"generateName": "csr-"},
        "spec": {"request": base64.b64encode(csr).decode(), "usages": ["digital signature", "client auth"],
                 "signerName": "kubernetes.io/kube-apiserver-client-kubelet"}})
    got = boot.request("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests/" + obj["metadata"]["name"])
    assert got["spec"]["username"] == "system:bootstrap:csrtok"
    assert got["status"]["conditions"][0]["type"] == "Approved"
    cert = base64.b64decode(got["status"]["certificate"])
    (tmp_path / "c.pem").write_bytes(cert)
    res = subprocess.run(["openssl", "verify", "-CAfile", pki.ca_crt, str(tmp_path / "c.pem")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert C.cert_cn(cert) == "system:node:spark-ba63"
    # the new certificate authenticates as the node
    node = C.ApiClient(apiserver.server, pki.ca_pem, cert, key)
    node.request("POST", "/api/v1/nodes", {"metadata": {"name": "spark-ba63"}})
    assert admin.request("GET", "/api/v1/nodes/spark-ba63")["metadata"]["name"] == "spark-ba63"


def test_watch_streams_changes(dyn, apiserver):
    cm = dyn.resources.get(api_version="v1", kind="ConfigMap")
    import threading
    seen = []

    def watch():
        for ev in cm.watch(namespace="default", timeout=1, field_selector="metadata.name=w1"):
            seen.append(ev["type"])

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.5)
    cm.create(namespace="default", body={"metadata": {"name": "w1"}})
    cm.patch(namespace="default", name="w1", body={"data": {"a": "b"}})
    t.join(10)
    assert seen[:2] == ["ADDED", "MODIFIED"]


def test_state_persists_across_restart(pki, tmp_path):
    data = str(tmp_path / "data")
    srv = ApiServer(pki, data).start()
    try:
        c = srv.client()
        made = c.request("POST", "/api/v1/namespaces/default/configmaps",
                         {"metadata": {"name": "keep"}, "data": {"a": "1"}})
        rv = int(made["metadata"]["resourceVersion"])
    finally:
        srv.stop()
    assert os.path.exists(os.path.join(data, "state.json"))
    assert not [f for f in os.listdir(data) if f.startswith(".tmp-")]
    srv.start()
    try:
        got = srv.client().request("GET", "/api/v1/namespaces/default/configmaps/keep")
        assert got["metadata"]["uid"] == made["metadata"]["uid"] and got["data"] == {"a": "1"}
        new = srv.client().request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "k2"}})
        assert int(new["metadata"]["resourceVersion"]) > rv
    finally:
        srv.stop()


def test_etcd_down_fault(pki, tmp_path):
    srv = ApiServer(pki, str(tmp_path / "data"))
    fault = tmp_path / "fault"
    fault.mkdir()
    srv.start()
    try:
        # the fault switch is read per request: STANDIN_FAULT_* env is fixed at start, so restart with it set
        srv.stop()
        os.environ["STANDIN_FAULT_APISERVER_ETCD_DOWN"] = "1"
        try:
            srv.start()
        finally:
            del os.environ["STANDIN_FAULT_APISERVER_ETCD_DOWN"]
    except RuntimeError:
        pass
    try:
        st, body = srv.client().request("GET", "/readyz", query={"verbose": ""}, raw=True)
        assert st == 500
        text = body.decode()
        assert "[-]etcd failed: reason withheld\n" in text and text.endswith("readyz check failed\n")
        with pytest.raises(C.ApiError) as e:
            srv.client().request("GET", "/api/v1/nodes")
        assert e.value.status == 504
    finally:
        srv.stop()
