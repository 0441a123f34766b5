"""kubeadm core: the decision table (every row), kubeconfig and CA pin, argv builders, fallback paths and the
parsers of real kubeadm output (tests/unit/fixtures/kubeadm, copied from shared/fixtures with their headers).

Node objects are constructed here in the shape the API returns (status.conditions[type=Ready]).
"""

import json
import base64
import os
import shutil
import subprocess

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import kubeadm as core

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
CA_A = "sha256:8d6e659203b93eb44a3cab2ba733c443c85d23400d8e1a5ed40e514e6d3f59aa"
CA_B = "sha256:5d12d53a330e0f1e26803a00750015eda2190f74cef6d2701cbd65e87c07c0ea"
NOW = 1767225600  # 2026-01-01T00:00:00Z
TOKEN = "abcdef.0123456789abcdef"


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


def header(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if line.startswith("#@ "))


# ---------------------------------------------------------------------------------------------
# builders for the planner's inputs
# ---------------------------------------------------------------------------------------------

def node(ready="True", since="2025-12-31T23:00:00Z", reason="KubeletReady", message="kubelet is posting ready status",
         name="spark-ba63"):
    """A Node as kubernetes.core.k8s_info returns it (constructed; only the fields the planner reads)."""
    conditions = [{"type": "MemoryPressure", "status": "False", "lastTransitionTime": "2025-12-01T00:00:00Z"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "lastTransitionTime": since, "reason": reason,
                           "message": message})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"conditions": conditions}}


def healthy_worker(**overrides):
    local = {
        "kubelet_conf": True, "kubelet_conf_server": "https://10.10.10.1:6443", "kubelet_conf_ca_hash": CA_A,
        "kubelet_conf_node": "spark-ba63", "bootstrap_kubelet_conf": False, "ca_crt": True, "ca_crt_hash": CA_A,
        "kubelet_config": True, "apiserver_manifest": False, "manifests_nonempty": False, "admin_conf": False,
        "etcd_data": False, "kubelet_active": "active", "kubelet_enabled": "enabled",
        "kubelet_active_seconds": 86400.0, "cri_socket": core.DEFAULT_CRI_SOCKET, "cri_socket_present": True,
    }
    local.update(overrides)
    return local


def fresh(**overrides):
    """A node with nothing of kubeadm on it (the kubelet crash-loops without config: 'activating')."""
    values = dict(kubelet_conf=False, kubelet_conf_server=None, kubelet_conf_ca_hash=None, kubelet_conf_node=None,
                  ca_crt=False, ca_crt_hash=None, kubelet_config=False, kubelet_active="activating",
                  kubelet_active_seconds=None)
    values.update(overrides)
    return healthy_worker(**values)


def healthy_cp(**overrides):
    local = healthy_worker(kubelet_conf_node="spark-2959", apiserver_manifest=True, manifests_nonempty=True,
                           admin_conf=True, etcd_data=True)
    local.update(overrides)
    return local


def worker_state(local, api_node="default", **overrides):
    state = {"role": "worker", "state": "present", "local": local, "node_name": "spark-ba63",
             "api_node": node() if api_node == "default" else api_node, "cluster_exists": None,
             "api_endpoint": "10.10.10.1:6443", "token": TOKEN, "ca_cert_hash": CA_A, "init_config": None,
             "kubelet_ready_grace": 300, "now": NOW}
    state.update(overrides)
    return state


def cp_state(local, cluster_exists=True, **overrides):
    state = {"role": "control_plane", "state": "present", "local": local, "node_name": "spark-2959",
             "api_node": node(name="spark-2959"), "cluster_exists": cluster_exists, "api_endpoint": None,
             "token": None, "ca_cert_hash": None, "init_config": "/etc/kubernetes/kubeadm-config.yaml",
             "kubelet_ready_grace": 300, "now": NOW}
    state.update(overrides)
    return state


# ---------------------------------------------------------------------------------------------
# The decision table.  Each row: id, state, expected action, expected error (substring or None),
# expected missing options, a substring every row's reasons must contain.
# ---------------------------------------------------------------------------------------------

DECISION_TABLE = [
    # --- state=reset (any role)
    ("reset-worker-with-state", worker_state(healthy_worker(), state="reset"), "reset", None, [], "state=reset"),
    ("reset-already-clean", worker_state(fresh(), api_node=None, state="reset"), "none", None, [], "no kubeadm"),
    ("reset-control-plane", cp_state(healthy_cp(), state="reset"), "reset", None, [], "etcd_data"),
    # --- worker, kubelet.conf present
    ("healthy-ready-node", worker_state(healthy_worker()), "none", None, [], "is Ready"),
    ("kubelet-stopped-node-exists", worker_state(healthy_worker(kubelet_active="inactive")),
     "restart_kubelet", None, [], "kubelet is inactive"),
    ("kubelet-failed-node-unknown", worker_state(healthy_worker(kubelet_active="failed"), api_node=node("Unknown")),
     "restart_kubelet", None, [], "kubelet is failed"),
    ("kubelet-stopped-node-notready", worker_state(healthy_worker(kubelet_active="inactive"),
                                                   api_node=node("False")),
     "restart_kubelet", None, [], "kubelet is inactive"),
    ("kubelet-active-not-enabled", worker_state(healthy_worker(kubelet_enabled="disabled")),
     "restart_kubelet", None, [], "not enabled at boot"),
    ("node-deleted-from-api (kubespray)", worker_state(healthy_worker(), api_node=None),
     "reset_and_join", None, [], "does not exist in the API although kubelet.conf is present"),
    ("node-deleted-and-kubelet-stopped", worker_state(healthy_worker(kubelet_active="inactive"), api_node=None),
     "reset_and_join", None, [], "does not exist in the API"),
    ("other-api-server", worker_state(healthy_worker(kubelet_conf_server="https://192.168.86.38:6443")),
     "reset_and_join", None, [], "points at API server https://192.168.86.38:6443"),
    ("same-api-server-other-spelling", worker_state(healthy_worker(kubelet_conf_server="https://10.10.10.1:6443/")),
     "none", None, [], "is Ready"),
    ("kubelet-conf-trusts-other-ca", worker_state(healthy_worker(kubelet_conf_ca_hash=CA_B)),
     "reset_and_join", None, [], "kubelet.conf trusts a different CA"),
    ("pki-ca-crt-other-ca", worker_state(healthy_worker(ca_crt_hash=CA_B)),
     "reset_and_join", None, [], "/etc/kubernetes/pki/ca.crt trusts a different CA"),
    ("kubelet-conf-and-ca-crt-disagree", worker_state(healthy_worker(ca_crt_hash=CA_B), ca_cert_hash=None),
     "reset_and_join", None, ["ca_cert_hash"], "trust different CAs"),
    ("ca-unknown-is-not-a-mismatch", worker_state(healthy_worker(kubelet_conf_ca_hash=None, ca_crt_hash=None)),
     "none", None, [], "is Ready"),
    ("other-node-identity", worker_state(healthy_worker(kubelet_conf_node="spark-2959")),
     "reset_and_join", None, [], "identifies this node as spark-2959"),
    ("half-finished-join", worker_state(healthy_worker(kubelet_config=False)),
     "reset_and_join", None, [], "config.yaml missing"),
    # --- worker, consistent, kubelet active, Node not Ready: tolerate, restart, then re-join or stop with the diagnosis
    ("notready-reported-by-kubelet-within-grace", worker_state(healthy_worker(), api_node=node(
        "False", since="2025-12-31T23:59:00Z", reason="KubeletNotReady",
        message="container runtime network not ready: cni plugin not initialized")),
     "none", None, [], "tolerated for 240s more"),
    ("notready-reported-by-kubelet-beyond-grace", worker_state(healthy_worker(), api_node=node(
        "False", reason="KubeletNotReady", message="container runtime network not ready: cni plugin not initialized")),
     "restart_kubelet", None, [], "Ready=False (KubeletNotReady: container runtime network not ready"),
    ("notready-after-restart-kubelet-reports-it", worker_state(healthy_worker(kubelet_active_seconds=5.0), api_node=node(
        "False", reason="KubeletNotReady", message="container runtime network not ready: cni plugin not initialized"),
        kubelet_restarted=True),
     "none", "a re-join cannot fix it", [], "still Ready=False"),
    ("unknown-within-grace", worker_state(healthy_worker(), api_node=node("Unknown", since="2025-12-31T23:58:00Z")),
     "none", None, [], "tolerated for 180s more"),
    ("unknown-beyond-grace", worker_state(healthy_worker(), api_node=node("Unknown", since="2025-12-31T23:00:00Z")),
     "restart_kubelet", None, [], "has been Ready=Unknown (KubeletReady: kubelet is posting ready status) for 3600s"),
    ("unknown-beyond-grace-names-the-next-step",
     worker_state(healthy_worker(), api_node=node("Unknown", since="2025-12-31T23:00:00Z")),
     "restart_kubelet", None, [], "the next step is a re-join"),
    ("unknown-after-restart", worker_state(healthy_worker(kubelet_active_seconds=5.0),
                                           api_node=node("Unknown", since="2025-12-31T23:59:00Z"),
                                           kubelet_restarted=True),
     "reset_and_join", None, [], "is still Ready=Unknown"),
    ("unknown-long-but-kubelet-just-started",
     worker_state(healthy_worker(kubelet_active_seconds=10.0), api_node=node("Unknown", since="2025-12-01T00:00:00Z")),
     "none", None, [], "tolerated for 290s more"),
    ("no-ready-condition-no-times", worker_state(healthy_worker(kubelet_active_seconds=None), api_node=node(None)),
     "restart_kubelet", None, [], "an unknown time"),
    ("grace-zero", worker_state(healthy_worker(), api_node=node("Unknown", since="2025-12-31T23:59:59Z"),
                                kubelet_ready_grace=0),
     "restart_kubelet", None, [], "kubelet_ready_grace=0"),
    ("unknown-and-api-unreachable-from-the-node",
     worker_state(healthy_worker(diagnosis={"api_reachable": False, "api_error": "timed out"}),
                  api_node=node("Unknown", since="2025-12-31T23:00:00Z")),
     "none", "this node cannot reach the API at 10.10.10.1:6443: timed out", [], "cannot reach the API"),
    ("api-unreachable-within-grace-is-tolerated",
     worker_state(healthy_worker(diagnosis={"api_reachable": False, "api_error": "timed out"}),
                  api_node=node("Unknown", since="2025-12-31T23:59:30Z")),
     "none", None, [], "tolerated"),
    # --- worker, no kubelet.conf
    ("nothing-local-no-node", worker_state(fresh(), api_node=None), "join", None, [], "does not exist in the API"),
    ("no-conf-node-notready-clean", worker_state(fresh(), api_node=node("Unknown")),
     "join", None, [], "kubeadm join takes it over"),
    ("no-conf-node-notready-leftovers", worker_state(fresh(ca_crt=True), api_node=node("Unknown")),
     "reset_and_join", None, [], "leftover state would fail kubeadm join's preflight: ca_crt"),
    ("no-conf-leftover-kubelet-config", worker_state(fresh(kubelet_config=True), api_node=None),
     "reset_and_join", None, [], "kubelet_config"),
    ("no-conf-kubelet-running", worker_state(fresh(kubelet_active="active"), api_node=None),
     "reset_and_join", None, [], "port 10250 in use"),
    # A reinstalled worker whose Node is still Ready: the plan deletes the stale Node, then joins (never refuses).
    ("no-conf-node-ready", worker_state(fresh(), api_node=node("True")),
     "join", None, [], "the stale Node is deleted before the join"),
    ("no-conf-node-ready-leftovers", worker_state(fresh(kubelet_config=True), api_node=node("True")),
     "reset_and_join", None, [], "the stale Node is deleted before the join"),
    ("k8s-info-result-empty", worker_state(fresh(), api_node={"resources": [], "api_found": True}),
     "join", None, [], "does not exist in the API"),
    ("k8s-info-result-with-node", worker_state(healthy_worker(), api_node={"resources": [node()]}),
     "none", None, [], "is Ready"),
    # --- worker, join data / API problems
    ("join-missing-token-and-hash", worker_state(fresh(), api_node=None, token=None, ca_cert_hash=None),
     "join", None, ["token", "ca_cert_hash"], "does not exist"),
    ("rejoin-missing-endpoint", worker_state(healthy_worker(), api_node=None, api_endpoint=None),
     "reset_and_join", None, ["api_endpoint"], "does not exist"),
    ("join-but-api-down", worker_state(healthy_worker(), api_node=None, cluster_exists=False),
     "reset_and_join", "refusing to reset or join", [], "does not exist"),
    ("restart-allowed-when-api-down", worker_state(healthy_worker(kubelet_active="inactive"), cluster_exists=False),
     "restart_kubelet", None, [], "kubelet is inactive"),
    # --- control plane
    ("cp-no-cluster-clean", cp_state(fresh(kubelet_active="inactive"), cluster_exists=False), "init", None, [],
     "no cluster exists"),
    ("cp-no-cluster-no-init-config", cp_state(fresh(), cluster_exists=False, init_config=None), "init", None,
     ["init_config"], "no cluster exists"),
    ("cp-files-kubelet-stopped", cp_state(healthy_cp(kubelet_active="inactive"), cluster_exists=False),
     "restart_kubelet", None, [], "kubelet is inactive"),
    ("cp-files-kubelet-not-enabled", cp_state(healthy_cp(kubelet_enabled="disabled")),
     "restart_kubelet", None, [], "not enabled"),
    ("cp-healthy", cp_state(healthy_cp()), "none", None, [], "kubelet active and enabled"),
    ("cp-files-api-not-up-yet", cp_state(healthy_cp(), cluster_exists=False), "none", None, [],
     "does not answer yet"),
    ("cp-never-rejoins-when-node-missing", cp_state(healthy_cp(), api_node=None), "none", None, [],
     "control-plane files present"),
    ("cp-api-answers-but-no-files", cp_state(fresh(), cluster_exists=True), "none",
     "refusing to init over an existing cluster", [], "the API answers"),
    ("cp-cluster-exists-unknown", cp_state(fresh(), cluster_exists=None), "none", "cluster_exists is required", [],
     "no control-plane files"),
    ("cp-partial-state-etcd-data", cp_state(fresh(etcd_data=True), cluster_exists=False), "none",
     "partial kubeadm state on this control-plane node (etcd_data)", [], "no cluster answers"),
    ("cp-partial-state-kubelet-conf", cp_state(fresh(kubelet_conf=True), cluster_exists=False), "none",
     "refusing to init over it", [], "no cluster answers"),
]


@pytest.mark.parametrize("state,action,error,missing,reason", [row[1:] for row in DECISION_TABLE],
                         ids=[row[0] for row in DECISION_TABLE])
def test_decision_table(state, action, error, missing, reason):
    plan = core.plan(state)
    assert plan["action"] == action, plan
    assert plan["action"] in core.ACTIONS
    if error:
        assert plan["error"] and error in plan["error"], plan
    else:
        assert plan["error"] is None, plan
    if missing is not None:
        assert plan["missing"] == missing
    if reason:
        assert any(reason in r for r in plan["reasons"]), plan["reasons"]
    assert plan["reasons"] and all(isinstance(r, str) for r in plan["reasons"])
    assert TOKEN not in repr(plan)


@pytest.mark.parametrize("state,expected", [
    (worker_state(fresh(), api_node=node("True")), True),            # stale Ready Node: kubeadm join would refuse it
    (worker_state(fresh(), api_node=node("Unknown")), True),         # a not-Ready leftover Node
    (worker_state(healthy_worker(), api_node=node("Unknown", since="2025-12-31T23:00:00Z"), kubelet_restarted=True),
     True),
    (worker_state(fresh(), api_node=None), False),                   # nothing to delete
    (worker_state(healthy_worker(), api_node=None), False),          # deleted already (re-join)
    (worker_state(healthy_worker()), False),                         # healthy: no join at all
    (worker_state(healthy_worker(kubelet_active="inactive")), False),
], ids=["ready-stale", "notready-stale", "unknown-after-restart", "fresh-no-node", "rejoin-no-node", "healthy",
        "restart-only"])
def test_plan_says_when_the_node_object_must_be_deleted_first(state, expected):
    assert core.plan(state)["delete_api_node"] is expected


def test_decision_table_covers_every_action():
    assert set(row[2] for row in DECISION_TABLE) == set(core.ACTIONS)


def test_control_plane_never_joins_or_resets_itself():
    """Whatever the API says, role=control_plane with state=present never plans join/reset_and_join/reset."""
    for local in (healthy_cp(), healthy_cp(kubelet_active="inactive"), fresh(), fresh(etcd_data=True),
                  healthy_cp(kubelet_conf_ca_hash=CA_B, kubelet_conf_server="https://1.2.3.4:6443")):
        for api_node in (None, node("Unknown", name="spark-2959"), node("True", name="spark-2959")):
            for exists in (True, False, None):
                plan = core.plan(cp_state(local, cluster_exists=exists, api_node=api_node))
                assert plan["action"] in ("none", "restart_kubelet", "init"), (local, exists, plan)
                if plan["action"] == "init":
                    assert exists is False and not core.leftovers(local, "control_plane")


def test_init_only_when_no_cluster_and_no_state():
    plan = core.plan(cp_state(fresh(), cluster_exists=False))
    assert plan["action"] == "init" and plan["error"] is None
    for exists in (True, None):
        assert core.plan(cp_state(fresh(), cluster_exists=exists))["action"] != "init"


def test_worker_never_inits():
    for local in (fresh(), healthy_worker()):
        for exists in (True, False, None):
            assert core.plan(worker_state(local, api_node=None, cluster_exists=exists))["action"] != "init"


def test_missing_message_names_options():
    plan = core.plan(worker_state(fresh(), api_node=None, token=None, ca_cert_hash=None))
    message = core.missing_message(plan)
    assert message.startswith("planned join (")
    assert message.endswith("these options are missing: token, ca_cert_hash")
    assert core.missing_message(core.plan(worker_state(healthy_worker()))) is None
    one = core.plan(cp_state(fresh(), cluster_exists=False, init_config=None))
    assert core.missing_message(one).endswith("this option is missing: init_config")


def test_predicted_local():
    local = fresh()
    after = core.predicted_local(local, "join")
    assert after["kubelet_conf"] and after["kubelet_active"] == "active" and not after["apiserver_manifest"]
    assert core.predicted_local(local, "init")["apiserver_manifest"] is True
    after = core.predicted_local(healthy_worker(), "reset")
    assert not after["kubelet_conf"] and after["kubelet_conf_server"] is None
    assert core.predicted_local(healthy_worker(kubelet_active="failed"), "restart_kubelet")["kubelet_active"] == "active"
    assert core.predicted_local(local, "none") == local


# ---------------------------------------------------------------------------------------------
# kubeconfig, CA pin, identity
# ---------------------------------------------------------------------------------------------

def test_fixture_ca_hashes_match_kubeadm_recipe():
    """The expected pins were computed with the openssl pipeline the kubeadm docs give (in each header)."""
    assert CA_A in header("kubeadm", "constructed-ca-a.crt")
    assert CA_B in header("kubeadm", "constructed-ca-b.crt")


def test_ca_hash_with_cryptography():
    assert core.HAS_CRYPTOGRAPHY
    assert core.spki_hash_from_cert_pem(load("kubeadm", "constructed-ca-a.crt")) == CA_A
    assert core.spki_hash_from_cert_pem(load("kubeadm", "constructed-ca-b.crt")) == CA_B
    assert core.spki_hash_from_cert_pem("not a certificate") is None
    assert core.spki_hash_from_cert_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None


def test_ca_hash_without_cryptography(monkeypatch):
    monkeypatch.setattr(core, "HAS_CRYPTOGRAPHY", False)
    assert core.spki_hash_from_cert_pem(load("kubeadm", "constructed-ca-a.crt")) is None


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_ca_hash_from_real_openssl_pubkey_output():
    """The openssl fallback: `openssl x509 -noout -pubkey` (certificate on stdin, as the module runs it)."""
    for name, expected in (("constructed-ca-a.crt", CA_A), ("constructed-ca-b.crt", CA_B)):
        out = subprocess.run(core.openssl_pubkey_argv("openssl"), input=load("kubeadm", name),
                             capture_output=True, text=True, check=True).stdout
        assert core.spki_hash_from_pubkey_pem(out) == expected


def test_spki_hash_from_pubkey_pem_garbage():
    assert core.spki_hash_from_pubkey_pem("") is None
    assert core.spki_hash_from_pubkey_pem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----") is None


@pytest.mark.parametrize("use_yaml", [True, False], ids=["yaml", "line-scanner"])
def test_parse_kubeconfig_worker_layout(use_yaml):
    kc = core.parse_kubeconfig(load("kubeadm", "constructed-kubelet-conf-worker.yaml"), use_yaml=use_yaml)
    assert kc["server"] == "https://10.10.10.1:6443"
    assert kc["ca_file"] is None and kc["error"] is None
    assert core.spki_hash_from_cert_pem(kc["ca_pem"]) == CA_A
    assert kc["user"] == "default-auth" and kc["node_name"] is None
    assert kc["client_cert_file"] == "/var/lib/kubelet/pki/kubelet-client-current.pem"
    assert kc["clusters"] == 1


CP_KUBELET_CONF = """apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://10.10.10.1:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: system:node:spark-2959
  name: system:node:spark-2959@kubernetes
current-context: system:node:spark-2959@kubernetes
kind: Config
users:
- name: system:node:spark-2959
  user:
    client-certificate-data: %s
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
"""


@pytest.mark.parametrize("use_yaml", [True, False], ids=["yaml", "line-scanner"])
def test_parse_kubeconfig_control_plane_layout(use_yaml):
    """Constructed: the layout kubeadm init writes (system:node:<name> user, CA as a file)."""
    data = base64.b64encode(load("kubeadm", "constructed-ca-b.crt").encode()).decode()
    kc = core.parse_kubeconfig(CP_KUBELET_CONF % data, use_yaml=use_yaml)
    assert kc["ca_file"] == "/etc/kubernetes/pki/ca.crt" and kc["ca_pem"] is None
    assert kc["node_name"] == "spark-2959"
    assert core.spki_hash_from_cert_pem(kc["client_cert_pem"]) == CA_B


def test_parse_kubeconfig_json_and_bad_input():
    kc = core.parse_kubeconfig('{"clusters": [{"name": "c", "cluster": {"server": "https://h:6443"}}], '
                               '"contexts": [{"name": "x", "context": {"cluster": "c", "user": "system:node:n1"}}], '
                               '"current-context": "x"}')
    assert kc["server"] == "https://h:6443" and kc["node_name"] == "n1"
    bad = core.parse_kubeconfig("clusters:\n- cluster:\n    certificate-authority-data: ***\n    server: https://h:1\n")
    assert bad["server"] == "https://h:1"
    assert bad["error"] == "certificate-authority-data is not valid base64" or bad["ca_pem"] is not None
    assert core.parse_kubeconfig(None)["server"] is None
    assert core.parse_kubeconfig(": : :\n\t- [")["server"] is None


def test_node_name_from_certificates():
    assert core.node_name_from_cert_pem(load("kubeadm", "constructed-ca-a.crt")) is None  # CN=kubernetes
    assert core.node_name_from_openssl_subject("subject=O = system:nodes, CN = system:node:spark-ba63") == "spark-ba63"
    assert core.node_name_from_openssl_subject("subject=O=system:nodes, CN=system:node:spark-ba63\n") == "spark-ba63"
    assert core.node_name_from_openssl_subject("subject=CN = kubernetes") is None


def test_node_name_from_generated_kubelet_client_cert():
    """A kubelet client certificate made here with cryptography (CN=system:node:<name>, O=system:nodes)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "system:node:spark-ba63")])
    start = datetime.datetime(2025, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    assert core.node_name_from_cert_pem(pem + key_pem) == "spark-ba63"  # kubelet-client-current.pem layout


@pytest.mark.parametrize("value,expected", [
    ("sha256:" + "A" * 64, "sha256:" + "a" * 64),
    ("a" * 64, "sha256:" + "a" * 64),
    (None, None),
    ("", None),
])
def test_normalize_ca_hash(value, expected):
    assert core.normalize_ca_hash(value) == expected


@pytest.mark.parametrize("value", ["sha256:abc", "md5:" + "a" * 64, "sha256:" + "g" * 64])
def test_normalize_ca_hash_rejects(value):
    with pytest.raises(ValueError):
        core.normalize_ca_hash(value)


@pytest.mark.parametrize("a,b,match", [
    ("https://10.10.10.1:6443", "10.10.10.1:6443", True),
    ("https://10.10.10.1:6443/", "10.10.10.1:6443", True),
    ("https://10.10.10.1:6443", "10.10.10.2:6443", False),
    ("https://10.10.10.1:6443", "10.10.10.1:8443", False),
    ("https://API.example.invalid:6443", "api.example.invalid:6443", True),
    ("https://[fd00::1]:6443", "[fd00::1]:6443", True),
    ("https://[fd00::1]:6443", "[fd00::2]:6443", False),
    ("https://10.10.10.1", "10.10.10.1:443", True),
    ("https://10.10.10.1:6443", "10.10.10.1", True),
    (None, "10.10.10.1:6443", True),
])
def test_endpoints_match(a, b, match):
    assert core.endpoints_match(a, b) is match


# ---------------------------------------------------------------------------------------------
# Node, systemd, /proc helpers
# ---------------------------------------------------------------------------------------------

def test_normalize_api_node():
    n = node()
    assert core.normalize_api_node(n) is n
    assert core.normalize_api_node({"resources": [n], "api_found": True}) is n
    assert core.normalize_api_node({"resources": []}) is None
    assert core.normalize_api_node([]) is None
    assert core.normalize_api_node({}) is None
    assert core.normalize_api_node(None) is None
    assert core.normalize_api_node("spark-ba63") is None


def test_node_ready():
    ready = core.node_ready(node("Unknown", since="2025-12-31T23:00:00Z", reason="NodeStatusUnknown"))
    assert ready == {"status": "Unknown", "since": NOW - 3600, "reason": "NodeStatusUnknown",
                     "message": "kubelet is posting ready status"}
    assert core.node_ready(node(None))["status"] is None
    assert core.node_ready(None)["status"] is None
    assert core.node_name_of(node()) == "spark-ba63"


@pytest.mark.parametrize("value,expected", [
    ("2026-01-01T00:00:00Z", NOW),
    ("2026-01-01T01:00:00+01:00", NOW),
    ("2025-12-31T19:00:00-0500", NOW),
    ("2026-01-01T00:00:00.123456Z", NOW),
    ("yesterday", None),
    (None, None),
])
def test_parse_k8s_time(value, expected):
    assert core.parse_k8s_time(value) == expected


def test_systemctl_show_and_active_seconds():
    props = core.parse_systemctl_show("ActiveEnterTimestampMonotonic=1000000000\nActiveState=active\n")
    assert props == {"ActiveEnterTimestampMonotonic": "1000000000", "ActiveState": "active"}
    assert core.active_seconds(props["ActiveEnterTimestampMonotonic"], "1100.50 4000.00\n") == 100.5
    assert core.active_seconds("0", "1100.5 1") is None  # never active
    assert core.active_seconds(None, "1100.5 1") is None
    assert core.active_seconds("1000", "") is None


def test_mounts_under_deepest_first():
    points = ["/", "/var/lib/kubelet", "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc-1/mount",
              "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access-x",
              "/var/lib/kubelet/plugins/kubernetes.io/csi/driver.longhorn.io/abc/globalmount",
              "/var/lib/kubelet-other", "/var/lib/longhorn"]
    got = core.mounts_under(points, "/var/lib/kubelet")
    assert got[0] == "/var/lib/kubelet/plugins/kubernetes.io/csi/driver.longhorn.io/abc/globalmount"
    assert "/var/lib/kubelet" not in got and "/var/lib/kubelet-other" not in got and "/var/lib/longhorn" not in got
    assert len(got) == 3
    depths = [p.count("/") for p in got]
    assert depths == sorted(depths, reverse=True)


def test_select_processes_exact_comm():
    entries = [(10, "kubeadm"), (11, "kubelet"), (12, "kubeadm-wrapper"), (13, "bash"), (14, "kubeadm")]
    assert core.select_processes(entries, ["kubeadm"], exclude={14}) == [10]


def test_select_processes_by_argv_never_by_pattern():
    entries = [
        (20, "python3", ["python3", "/usr/local/bin/kubeadm", "reset", "-f"]),    # #!/usr/bin/env python3 script
        (21, "timeout", ["/usr/bin/timeout", "--kill-after=5", "120", "/usr/bin/kubeadm", "reset", "-f"]),
        (22, "vim", ["vim", "/etc/kubernetes/kubeadm-config.yaml"]),
        (23, "bash", ["bash", "-c", "kubeadm join"]),
        (24, "kubeadm", ["/usr/bin/kubeadm", "join", "10.10.10.1:6443"]),
        (25, "python3", ["python3", "/usr/lib/ansible/kubeadm_node.py"]),
        (26, "sh", ["/bin/sh", "/opt/bin/kubeadm"]),
        (27, "less", ["less", "kubeadm"]),
    ]
    assert core.select_processes(entries, ["kubeadm"]) == [20, 24, 26]


def test_summarize_local_parses_kubelet_conf():
    text = load("kubeadm", "constructed-kubelet-conf-worker.yaml")
    local = core.summarize_local({"kubelet_conf": True, "kubelet_conf_text": text,
                                  "kubelet_conf_node": "spark-ba63", "kubelet_active": "active"})
    assert local["kubelet_conf_server"] == "https://10.10.10.1:6443"
    assert local["kubelet_conf_node"] == "spark-ba63"
    assert local["kubelet_enabled"] == "unknown" and local["ca_crt"] is False
    assert set(local) == set(core.LOCAL_KEYS)
    assert core.summarize_local({})["kubelet_conf_server"] is None


def test_leftovers():
    assert core.leftovers(fresh()) == []
    assert core.leftovers(healthy_worker()) == ["kubelet_conf", "ca_crt", "kubelet_config"]
    assert "etcd_data" in core.leftovers(healthy_cp(), "control_plane")
    assert "etcd_data" not in core.leftovers(healthy_cp(), "worker")


# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

def test_argv_builders():
    sock = core.DEFAULT_CRI_SOCKET
    assert core.reset_argv("kubeadm", sock) == ["kubeadm", "reset", "-f", "--cri-socket", sock]
    assert core.join_argv("kubeadm", "10.10.10.1:6443", TOKEN, CA_A, "spark-ba63", sock) == [
        "kubeadm", "join", "10.10.10.1:6443", "--token", TOKEN, "--discovery-token-ca-cert-hash", CA_A,
        "--node-name", "spark-ba63", "--cri-socket", sock]
    assert core.init_argv("kubeadm", "/etc/kubernetes/kubeadm-config.yaml") == [
        "kubeadm", "init", "--config", "/etc/kubernetes/kubeadm-config.yaml", "--skip-token-print"]
    assert core.systemctl_argv("systemctl", "enable", "kubelet", now=True) == ["systemctl", "enable", "--now", "kubelet"]
    assert core.systemctl_argv("systemctl", "restart", "kubelet") == ["systemctl", "restart", "kubelet"]
    assert core.crictl_remove_all_pods_argv("crictl", sock) == ["crictl", "--runtime-endpoint", sock, "rmp", "--all",
                                                                "--force"]
    assert core.umount_lazy_argv("umount", "/var/lib/kubelet/pods/x") == ["umount", "-l", "/var/lib/kubelet/pods/x"]
    assert core.openssl_pubkey_argv("openssl") == ["openssl", "x509", "-noout", "-pubkey"]
    assert core.openssl_subject_argv("openssl") == ["openssl", "x509", "-noout", "-subject"]


def test_cri_socket_path_and_join_root():
    assert core.cri_socket_path("unix:///run/containerd/containerd.sock") == "/run/containerd/containerd.sock"
    assert core.cri_socket_path("/run/crio/crio.sock") == "/run/crio/crio.sock"
    assert core.join_root("/", "etc/kubernetes") == "/etc/kubernetes"
    assert core.join_root("/tmp/r", "/etc/kubernetes") == "/tmp/r/etc/kubernetes"


# ---------------------------------------------------------------------------------------------
# forced reset paths
# ---------------------------------------------------------------------------------------------

def test_fallback_paths_worker():
    paths = core.fallback_paths("/", "worker")
    assert "/var/lib/kubelet" in paths["contents"] and "/etc/cni/net.d" in paths["contents"]
    assert "/var/lib/cni" in paths["contents"] and "/etc/kubernetes/pki" in paths["contents"]
    assert "/var/lib/etcd" not in paths["contents"]
    assert "/etc/kubernetes/kubelet.conf" in paths["files"]
    everything = paths["contents"] + paths["files"]
    assert "/etc/kubernetes" not in everything
    assert not any(p.startswith("/var/lib/longhorn") for p in everything)


def test_fallback_paths_control_plane_adds_etcd():
    paths = core.fallback_paths("/tmp/root", "control_plane")
    assert "/tmp/root/var/lib/etcd" in paths["contents"]
    assert "/tmp/root/etc/kubernetes/admin.conf" in paths["files"]


@pytest.mark.parametrize("path", ["/var/lib/longhorn", "/var/lib/longhorn/replicas", "/var/lib", "/var",
                                  "/etc/kubernetes", "/", "/home/doran", "/var/lib/containerd"])
def test_check_fallback_paths_refuses(path):
    with pytest.raises(ValueError):
        core.check_fallback_paths("/", [path])


def test_check_fallback_paths_refuses_outside_root():
    with pytest.raises(ValueError):
        core.check_fallback_paths("/tmp/root", ["/var/lib/kubelet"])
    assert core.check_fallback_paths("/tmp/root", ["/tmp/root/var/lib/kubelet"])


# ---------------------------------------------------------------------------------------------
# kubeadm output parsers (real captures)
# ---------------------------------------------------------------------------------------------

def test_parse_join_fail_kubelet_conf_exists_tabs():
    parsed = core.parse_kubeadm_output(load("kubeadm", "join-fail-kubelet-conf-exists-tabs.txt"))
    assert parsed["phase"] == "preflight"
    assert [e["check"] for e in parsed["errors"]] == [
        "FileAvailable--etc-kubernetes-kubelet.conf", "FileAvailable--etc-kubernetes-pki-ca.crt"]
    assert parsed["errors"][0]["message"] == "/etc/kubernetes/kubelet.conf already exists"
    assert not parsed["joined"]
    assert "leftover kubeadm files: the node needs a reset before it can join" in parsed["hints"]


def test_parse_join_fail_on_control_plane_with_port():
    parsed = core.parse_kubeadm_output(load("kubeadm", "join-fail-kubelet-conf-exists-on-cp-with-command.txt"))
    assert [e["check"] for e in parsed["errors"]] == [
        "FileAvailable--etc-kubernetes-kubelet.conf", "Port-10250", "FileAvailable--etc-kubernetes-pki-ca.crt"]
    assert "port 10250 in use: a kubelet is still running" in parsed["hints"]


@pytest.mark.parametrize("name,node_name,warning", [
    ("join-fail-node-ready-exists-modern-crio.txt", "ths-pc-3", "Service-Kubelet"),
    ("join-fail-node-ready-exists-older-swap-warning.txt", "node1", "Swap"),
])
def test_parse_join_fail_node_ready_exists(name, node_name, warning):
    parsed = core.parse_kubeadm_output(load("kubeadm", name))
    assert parsed["phase"] == "kubelet-start"
    assert parsed["node_exists_ready"] == node_name
    assert [w["check"] for w in parsed["warnings"]] == [warning]
    assert parsed["errors"] == []
    assert core.describe_failure(load("kubeadm", name)).startswith('phase kubelet-start: a Node with name "%s"'
                                                                   % node_name)


@pytest.mark.parametrize("name,warnings", [
    ("join-success-v1.33-with-prompt.txt", []),
    ("join-success-v1.34-cgroupv1-warning.txt", ["SystemVerification"]),
])
def test_parse_join_success(name, warnings):
    parsed = core.parse_kubeadm_output(load("kubeadm", name))
    assert parsed["joined"] is True
    assert parsed["errors"] == [] and parsed["phase"] is None
    assert [w["check"] for w in parsed["warnings"]] == warnings
    assert core.describe_failure(load("kubeadm", name)) == ""


@pytest.mark.parametrize("name", ["reset-interactive-v1.24-dockershim.txt", "reset-interactive-v1.29plus-super-admin.txt"])
def test_parse_reset_output(name):
    parsed = core.parse_kubeadm_output(load("kubeadm", name))
    assert parsed["errors"] == [] and parsed["phase"] is None and not parsed["joined"]


def test_reset_fixture_lists_what_the_fallback_removes():
    """The forced reset removes the files kubeadm reset itself lists (v1.29+ capture)."""
    text = load("kubeadm", "reset-interactive-v1.29plus-super-admin.txt")
    line = [ln for ln in text.splitlines() if ln.startswith("[reset] Deleting files:")][0]
    listed = line.split("[", 2)[2].rstrip("]").split()
    assert sorted("/" + f for f in core.FALLBACK_FILES) == sorted(listed)


def test_parse_join_command():
    parsed = core.parse_join_command(load("kubeadm", "token-create-print-join-command-a.txt"))
    assert parsed == {"api_endpoint": "192.168.100.31:6443", "token": "ez34if.qedae3br5r3mi7p2",
                      "ca_cert_hash": "sha256:91f646b4fa8a0b69811ad1c412258c41fd76b7940d1a13802898728d8b5474c7",
                      "extra": []}
    crio = core.parse_join_command(load("kubeadm", "join-fail-node-ready-exists-modern-crio.txt"))
    assert crio["api_endpoint"] == "192.168.41.104:6443"
    assert crio["extra"] == ["--cri-socket", "unix:///var/run/crio/crio.sock"]
    prompt = core.parse_join_command(load("kubeadm", "join-success-v1.33-with-prompt.txt"))
    assert prompt["token"] == "ukxc7d.cx0j05kw50wflz6v"
    assert core.parse_join_command("kubeadm join") is None
    assert core.parse_join_command("") is None


def test_parse_token_list():
    rows = core.parse_token_list(load("kubeadm", "token-list-two-tokens-utc.txt"))
    assert [r["token"] for r in rows] == ["ckmnmm.3f4d1t3a10nvi9r5", "jr7xaq.dy2wz9njsb68qh5d"]
    assert rows[0]["ttl"] == "23h" and rows[0]["expires"] == "2021-11-22T07:16:33Z"
    assert rows[0]["usages"] == ["authentication", "signing"] and rows[0]["description"] == "<none>"
    assert rows[1]["extra_groups"] == "system:bootstrappers:kubeadm:default-node-token"
    forever = core.parse_token_list(load("kubeadm", "token-list-forever-never.txt"))
    assert forever[0]["ttl"] == "<forever>" and forever[0]["expires"] == "<never>"
    assert forever[0]["description"] == "The default bootstrap token generated by 'kubeadm init'."
    assert core.parse_token_list("no table") == []


@pytest.mark.parametrize("name", ["token-create-print-join-command-a.txt", "join-success-v1.33-with-prompt.txt",
                                  "join-fail-kubelet-conf-exists-on-cp-with-command.txt",
                                  "token-list-two-tokens-utc.txt", "token-list-forever-never.txt",
                                  "join-fail-node-ready-exists-older-swap-warning.txt"])
def test_redact_tokens_removes_every_token_in_real_output(name):
    text = load("kubeadm", name)
    tokens = core.TOKEN_RE.findall(text)
    assert tokens
    cleaned = core.redact_tokens(text)
    for token in tokens:
        assert token not in cleaned
    assert "sha256:" in cleaned or "TOKEN" in cleaned  # the CA pin and headers stay


def test_redact_tokens_literal_secret():
    assert core.redact_tokens("token=s3cret-value", ["s3cret-value"]) == "token=********"
    assert core.redact_tokens(None) is None


# crictl ps -a -o json, shaped like the crictl ps JSON (constructed: the fixtures hold only `crictl pods` JSON)
CRICTL_PS = """{"containers": [
  {"id": "a1", "metadata": {"name": "kube-apiserver", "attempt": 0}, "state": "CONTAINER_EXITED", "createdAt": "100"},
  {"id": "a2", "metadata": {"name": "kube-apiserver", "attempt": 1}, "state": "CONTAINER_RUNNING", "createdAt": "200"},
  {"id": "b1", "metadata": {"name": "etcd", "attempt": 0}, "state": "CONTAINER_RUNNING", "createdAt": "150"},
  {"id": "c1", "metadata": {"name": "kube-scheduler", "attempt": 3}, "state": "CONTAINER_EXITED", "createdAt": "300"},
  {"id": "d1", "metadata": {"name": "calico-node", "attempt": 0}, "state": "CONTAINER_RUNNING", "createdAt": "50"}
]}"""


def test_static_pod_states_take_the_newest_container_of_each_static_pod():
    from ansible_collections.dgx_spark.cluster.plugins.module_utils.kubeadm import static_pod_states
    assert static_pod_states(CRICTL_PS) == {
        "etcd": "CONTAINER_RUNNING",
        "kube-apiserver": "CONTAINER_RUNNING",
        "kube-controller-manager": None,
        "kube-scheduler": "CONTAINER_EXITED",
    }
    assert static_pod_states("not json") == {}
    assert static_pod_states("") == {}


# ---------------------------------------------------------------------------------------------
# The diagnosis of a Node that is not Ready (parsers on real output; the planner's use of it)
# ---------------------------------------------------------------------------------------------

def kubelet_journal(name):
    with open(os.path.join(FIXTURES, "kubelet", name)) as handle:
        return handle.read()


def test_parse_kubelet_errors_on_a_real_journal_keeps_distinct_messages_newest_last():
    # A real kubelet v1.31.14 whose client certificate the API rejects; its "manifests path" noise is left out.
    errors = core.parse_kubelet_errors(kubelet_journal("journal-unauthorized-v1.31.14.txt"))
    assert len(errors) == 3 and all("Unauthorized" in e for e in errors), errors
    assert not any("Unable to read config path" in e for e in errors)
    assert len(set(errors)) == 3
    assert core.parse_kubelet_errors("") == []
    long_line = "E1130 00:40:02.312913    2381 x.go:1] " + "y" * 500
    assert len(core.parse_kubelet_errors(long_line)[0]) == 240
    repeated = "E1130 00:40:02.1 1 a.go:1] one\nE1130 00:40:03.1 1 a.go:1] two\nE1130 00:40:04.1 1 a.go:1] one\n"
    assert core.parse_kubelet_errors(repeated) == ["two", "one"]
    assert core.parse_kubelet_errors(repeated, limit=1) == ["one"]


def test_parse_runtime_conditions_from_crictl_info():
    text = json.dumps({"status": {"conditions": [
        {"type": "RuntimeReady", "status": True, "reason": "", "message": ""},
        {"type": "NetworkReady", "status": False, "reason": "NetworkPluginNotReady",
         "message": "Network plugin returns error: cni plugin not initialized"}]}})
    conditions = core.parse_runtime_conditions(text)
    assert [(c["type"], c["status"]) for c in conditions] == [("RuntimeReady", True), ("NetworkReady", False)]
    assert core.parse_runtime_conditions("not json") == [] and core.parse_runtime_conditions("{}") == []
    lines = core.describe_diagnosis({"runtime_conditions": conditions}, "10.10.10.1:6443")
    assert lines == ["container runtime reports NetworkReady=false (NetworkPluginNotReady: Network plugin returns "
                     "error: cni plugin not initialized)"]


@pytest.mark.parametrize("endpoint,expected", [
    ("10.10.10.1:6443", ("10.10.10.1", 6443)), ("https://10.10.10.1:6443/", ("10.10.10.1", 6443)),
    ("[fd00::1]:7443", ("fd00::1", 7443)), ("spark-2959", ("spark-2959", 6443)), ("", (None, None)),
])
def test_endpoint_host_port(endpoint, expected):
    assert core.endpoint_host_port(endpoint) == expected


def test_restart_plan_quotes_the_diagnosis_and_restarts_a_running_kubelet():
    diagnosis = {"api_reachable": True, "api_error": None, "runtime_conditions": [],
                 "kubelet_errors": core.parse_kubelet_errors(kubelet_journal("journal-unauthorized-v1.31.14.txt"))}
    plan = core.plan(worker_state(healthy_worker(diagnosis=diagnosis),
                                  api_node=node("Unknown", reason="NodeStatusUnknown",
                                                message="Kubelet stopped posting node status.")))
    assert plan["action"] == "restart_kubelet" and plan["restart_running"] is True
    text = " ".join(plan["reasons"])
    assert "this node reaches the API at 10.10.10.1:6443" in text
    assert "the kubelet's recent errors: " in text and "Unauthorized" in text
    # A kubelet that is merely stopped is started, not "restarted while running".
    assert core.plan(worker_state(healthy_worker(kubelet_active="inactive")))["restart_running"] is False


@pytest.mark.parametrize("state,expected", [
    (worker_state(healthy_worker(), api_node=node("Unknown")), True),
    (worker_state(healthy_worker(), api_node=node("False")), True),
    (worker_state(healthy_worker()), False),                       # Ready: nothing to diagnose, nothing read
    (worker_state(healthy_worker(), api_node=None), False),        # no Node: a re-join, not a diagnosis
    (worker_state(fresh(), api_node=node("Unknown")), False),      # no kubelet.conf: a join
    (cp_state(healthy_cp(), api_node=node("Unknown", name="spark-2959")), False),
])
def test_diagnosis_is_read_only_for_a_joined_worker_whose_node_is_not_ready(state, expected):
    assert bool(core.needs_diagnosis(state)) is expected
