# -*- coding: utf-8 -*-
# Tests of the TEST STAND-INs (tests/standin: kubeadm, kubelet, crictl, apiserver), which are NOT Kubernetes. Two
# "nodes" are STANDIN_ROOT trees on this machine; a fake systemctl really starts the kubelet and API stand-ins as
# processes. Everything listens on 127.0.0.1 only; every process is stopped by its pid at teardown.
"""kubeadm init/join/reset/token, kubelet status/lease/TLS bootstrap, crictl, end to end."""

import json
import os
import re
import subprocess
import time

import pytest

from standin_testlib import C, Node, fixture_text, wait_for

INIT_CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: %(port)d
nodeRegistration:
  name: spark-2959
  criSocket: unix:///run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: 127.0.0.1
bootstrapTokens:
- token: abcdef.0123456789abcdef
  ttl: 1h
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
encryptionAlgorithm: ECDSA-P256   # fast keys for the test; RSA-2048 is the default
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
apiServer:
  certSANs: [127.0.0.1, spark-2959]
  extraArgs:
  - name: bind-address
    value: 127.0.0.1
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("nodes"))
    cp = Node(base, "spark-2959")
    wk = Node(base, "spark-ba63")
    nodes = [cp, wk]
    try:
        for n in nodes:
            n.systemd("start", "containerd")
            n.systemd("enable", "kubelet")
        yield cp, wk, base
    finally:
        for n in nodes:
            n.stop_all()


def node_obj(admin, name):
    try:
        return admin.request("GET", "/api/v1/nodes/" + name)
    except C.ApiError:
        return None


def ready_of(node):
    for c in ((node or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return c
    return {}


def test_init_join_status_crictl_reset(cluster):
    cp, wk, base = cluster
    port = C.free_port()
    cfg = os.path.join(base, "init.yaml")
    with open(cfg, "w") as fh:
        fh.write(INIT_CONFIG % {"port": port})

    # ---- kubeadm init
    res = cp.run("kubeadm", "init", "--config", cfg, "--skip-phases", "addon/kube-proxy", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert out.startswith("[init] Using Kubernetes version: v1.31.4\n[preflight] Running pre-flight checks\n")
    assert "[mark-control-plane] Marking the node spark-2959 as control-plane by adding the taints " \
           "[node-role.kubernetes.io/control-plane:NoSchedule]" in out
    assert "Your Kubernetes control-plane has initialized successfully!" in out
    m = re.search(r"kubeadm join (127\.0\.0\.1:\d+) --token (\S+) \\\n\t--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64}) \n",
                  out)
    assert m, out
    endpoint, token, ca_hash = m.groups()
    assert token == "abcdef.0123456789abcdef"
    for f in ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key", "/etc/kubernetes/pki/apiserver.crt",
              "/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml",
              "/var/lib/kubelet/kubeadm-flags.env", "/etc/kubernetes/manifests/kube-apiserver.yaml",
              "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/manifests/kube-controller-manager.yaml",
              "/etc/kubernetes/manifests/kube-scheduler.yaml"):
        assert os.path.exists(cp.path(f)), f
    assert "--hostname-override=spark-2959" in open(cp.path("/var/lib/kubelet/kubeadm-flags.env")).read()
    admin = C.ApiClient.from_kubeconfig(cp.path("/etc/kubernetes/admin.conf"))
    node = node_obj(admin, "spark-2959")
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": "127.0.0.1"}
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.31.4"
    # no CNI configuration yet: NotReady with the real kubelet message
    ready = ready_of(node)
    assert ready["status"] == "False" and ready["message"].startswith(
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin "
        "returns error: cni plugin not initialized")
    with open(cp.path("/etc/cni/net.d/10-calico.conflist"), "w") as fh:
        fh.write('{"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": []}')
    wait_for(lambda: ready_of(node_obj(admin, "spark-2959")).get("status") == "True", what="control plane Ready")
    # static Pods: mirror pods in the API, containers in crictl
    mirrors = wait_for(lambda: admin.request("GET", "/api/v1/namespaces/kube-system/pods")["items"],
                       what="mirror pods")
    assert {p["metadata"]["name"] for p in mirrors} >= {"kube-apiserver-spark-2959", "etcd-spark-2959"}

    def crictl_ps():
        r = cp.run("crictl", "ps")
        return r.stdout if "kube-apiserver" in r.stdout else None

    ps = wait_for(crictl_ps, what="crictl ps")
    header = ps.splitlines()[0]
    # Column widths follow the content (like crictl's tabwriter): "About a minute ago" widens CREATED on a slow
    # machine, so check the columns and their order, not fixed widths.
    assert re.match(r"^CONTAINER {2,}IMAGE {2,}CREATED {2,}STATE {2,}NAME {2,}ATTEMPT {2,}POD ID {2,}POD$", header), header
    assert re.search(r"\sRunning\s+kube-apiserver\s+0\s+[0-9a-f]{13}\s+kube-apiserver-spark-2959$", ps, re.M)
    pods_json = json.loads(cp.run("crictl", "pods", "-o", "json").stdout)
    assert {p["state"] for p in pods_json["items"]} == {"SANDBOX_READY"}
    sid = pods_json["items"][0]["id"]
    assert json.loads(cp.run("crictl", "inspectp", sid[:13]).stdout)["status"]["id"] == sid
    assert json.loads(cp.run("crictl", "info").stdout)["status"]["conditions"][0]["type"] == "RuntimeReady"

    # ---- tokens
    res = cp.run("kubeadm", "token", "create", "--ttl", "15m", "--print-join-command")
    assert res.returncode == 0, res.stderr
    jc = res.stdout
    assert re.fullmatch(r"kubeadm join 127\.0\.0\.1:%d --token [a-z0-9]{6}\.[a-z0-9]{16} "
                        r"--discovery-token-ca-cert-hash %s \n" % (port, ca_hash), jc), jc
    new_token = jc.split()[4]
    lst = cp.run("kubeadm", "token", "list").stdout
    assert lst.splitlines()[0].split() == ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA", "GROUPS"]
    row = [r for r in lst.splitlines() if r.startswith(new_token)][0]
    assert re.match(r"^%s   1[45]m +\S+Z +authentication,signing   <none> +"
                    r"system:bootstrappers:kubeadm:default-node-token$" % re.escape(new_token), row), row
    assert cp.run("kubeadm", "version", "-o", "short").stdout == "v1.31.4\n"

    # ---- join failures, worded like the real ones
    bad_hash = "sha256:" + "0" * 64
    res = wk.run("kubeadm", "join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", bad_hash,
                 "--node-name", "spark-ba63")
    assert res.returncode == 1
    assert re.search(r'^error execution phase preflight: couldn\'t validate the identity of the API Server: cluster '
                     r'CA found in cluster-info ConfigMap is invalid: none of the public keys "%s" are pinned$'
                     % ca_hash, res.stderr, re.M), res.stderr
    res = wk.run("kubeadm", "join", endpoint, "--token", token[:7] + "x" * 16, "--discovery-token-ca-cert-hash",
                 ca_hash, "--node-name", "spark-ba63")
    assert "failed to verify JWS signature of received cluster info object, can't trust this API Server" in res.stderr
    res = wk.run("kubeadm", "join", endpoint, "--token", "zzzzzz.0123456789abcdef", "--discovery-token-ca-cert-hash",
                 ca_hash, "--node-name", "spark-ba63")
    assert 'could not find a JWS signature in the cluster-info ConfigMap for token ID "zzzzzz"' in res.stderr
    assert not os.path.exists(wk.path("/etc/kubernetes/kubelet.conf"))

    # ---- join
    res = wk.run("kubeadm", "join", endpoint, "--token", new_token, "--discovery-token-ca-cert-hash", ca_hash,
                 "--node-name", "spark-ba63", "--cri-socket", "unix:///run/containerd/containerd.sock", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    want = fixture_text("kubeadm-join-success-v1.33-with-prompt.txt").splitlines()[1:]  # drop the prompt line
    got = res.stdout.splitlines()

    def norm(line):  # the test's ports/timeouts and the measured duration differ from the capture
        return re.sub(r"(after|up to) \S+$", r"\1 X", re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:P", line))

    assert [norm(x) for x in got[:len(want)]] == [norm(x) for x in want]
    kubeconf = C.yaml_load(open(wk.path("/etc/kubernetes/kubelet.conf")).read())
    pem_path = kubeconf["users"][0]["user"]["client-certificate"]
    assert pem_path == "/var/lib/kubelet/pki/kubelet-client-current.pem"  # written by the kubelet's TLS bootstrap
    assert C.cert_cn(open(wk.path(pem_path), "rb").read()) == "system:node:spark-ba63"
    assert not os.path.exists(wk.path("/etc/kubernetes/bootstrap-kubelet.conf"))
    wk_node = wait_for(lambda: node_obj(admin, "spark-ba63"), what="worker Node registered")
    assert "node-role.kubernetes.io/control-plane" not in wk_node["metadata"]["labels"]
    with open(wk.path("/etc/cni/net.d/10-calico.conflist"), "w") as fh:
        fh.write("{}")
    wait_for(lambda: ready_of(node_obj(admin, "spark-ba63")).get("status") == "True", what="worker Ready")
    lease = admin.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/spark-ba63")
    assert lease["spec"]["holderIdentity"] == "spark-ba63"

    # ---- join again on a joined node: real preflight errors (tab-indented)
    res = wk.run("kubeadm", "join", endpoint, "--token", new_token, "--discovery-token-ca-cert-hash", ca_hash,
                 "--node-name", "spark-ba63")
    assert res.returncode == 1
    fx = fixture_text("kubeadm-join-fail-kubelet-conf-exists-tabs.txt")
    for line in fx.splitlines():
        if "ERROR" in line or line.startswith("[preflight] If you know"):
            assert line in (res.stdout + res.stderr).splitlines(), line

    # ---- a fresh machine with the same name while that Node is Ready
    fresh = Node(base, "spark-ba63-reinstalled")
    try:
        fresh.systemd("start", "containerd")
        res = fresh.run("kubeadm", "join", endpoint, "--token", new_token, "--discovery-token-ca-cert-hash", ca_hash,
                        "--node-name", "spark-ba63")
        assert res.returncode == 1
        assert 'error execution phase kubelet-start: a Node with name "spark-ba63" and status "Ready" already ' \
               'exists in the cluster. You must delete the existing Node or change the name of this new joining ' \
               'Node\n' in res.stderr
    finally:
        fresh.stop_all()

    # ---- a bound pod is run by the kubelet and finalised after a graceful delete
    admin.request("POST", "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "smoke"}, "spec": {"nodeName": "spark-ba63", "containers": [
            {"name": "c", "image": "busybox:1.36"}]}})

    def running():
        p = admin.request("GET", "/api/v1/namespaces/default/pods/smoke")
        return p if p["status"].get("phase") == "Running" else None

    pod = wait_for(running, what="pod Running")
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert "smoke" in wk.run("crictl", "pods").stdout
    admin.request("DELETE", "/api/v1/namespaces/default/pods/smoke")
    wait_for(lambda: not [p for p in admin.request("GET", "/api/v1/namespaces/default/pods")["items"]
                          if p["metadata"]["name"] == "smoke"], what="pod finalised by the kubelet")

    # ---- stale CNI netns (stand-in fault model) and containerd down
    os.makedirs(wk.path("/run/netns"), exist_ok=True)
    open(wk.path("/run/netns/cni-3b14aef7-1868-f8cc-422c-df5a5c62084c"), "w").close()
    wait_for(lambda: "stale network namespace /run/netns/cni-3b14aef7" in
             ready_of(node_obj(admin, "spark-ba63")).get("message", ""), what="stale netns NotReady")
    os.unlink(wk.path("/run/netns/cni-3b14aef7-1868-f8cc-422c-df5a5c62084c"))
    wk.systemd("stop", "containerd")
    wait_for(lambda: ready_of(node_obj(admin, "spark-ba63")).get("message") == "container runtime is down",
             what="runtime down")
    res = wk.run("crictl", "ps")
    assert res.returncode == 1 and "level=fatal" in res.stderr and "validate service connection" in res.stderr
    wk.systemd("start", "containerd")
    wait_for(lambda: ready_of(node_obj(admin, "spark-ba63")).get("status") == "True", what="Ready again")

    # ---- kubelet stopped: the node lifecycle controller marks it Unknown after the grace period
    wk.systemd("stop", "kubelet")

    def unknown():
        r = ready_of(node_obj(admin, "spark-ba63"))
        return r if r.get("status") == "Unknown" else None

    ready = wait_for(unknown, timeout=15, what="Ready=Unknown")
    assert ready["message"] == "Kubelet stopped posting node status."
    # the control-plane kubelet stopping does not stop the API (static Pods keep running)
    cp.systemd("stop", "kubelet")
    assert admin.request("GET", "/readyz", raw=True)[0] == 200
    cp.systemd("start", "kubelet")

    # ---- a deleted Node is NOT re-created by a running kubelet (real 1.31 behaviour); a restart re-registers it
    wk.systemd("start", "kubelet")
    wait_for(lambda: ready_of(node_obj(admin, "spark-ba63")).get("status") == "True", what="worker back")
    admin.request("DELETE", "/api/v1/nodes/spark-ba63")
    time.sleep(1.2)  # four kubelet sync periods
    assert node_obj(admin, "spark-ba63") is None
    wk.systemd("restart", "kubelet")
    wait_for(lambda: node_obj(admin, "spark-ba63"), what="re-registered after kubelet restart")

    # ---- reset on the worker
    res = wk.run("kubeadm", "reset", "-f", "--cri-socket", "unix:///run/containerd/containerd.sock")
    assert res.returncode == 0, res.stderr
    fx = fixture_text("kubeadm-reset-interactive-v1.29plus-super-admin.txt")
    for line in ("[reset] Stopping the kubelet service", '[reset] Unmounting mounted directories in "/var/lib/kubelet"',
                 "[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet "
                 "/etc/kubernetes/pki]",
                 "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d"):
        assert line in fx and line in res.stdout
    assert "Are you sure" not in res.stdout
    for f in ("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml"):
        assert not os.path.exists(wk.path(f)), f
    assert os.path.exists(wk.path("/etc/cni/net.d/10-calico.conflist"))  # reset leaves CNI config, like the real one
    assert wk.systemd("is-active", "kubelet").returncode == 3
    # the Node object stays in the API after a reset (kubeadm reset does not delete it)
    assert node_obj(admin, "spark-ba63") is not None

    # ---- reset fault injection: hangs until killed
    os.makedirs(wk.path("/etc/standin"), exist_ok=True)
    open(wk.path("/etc/standin/reset-hang"), "w").close()
    with pytest.raises(subprocess.TimeoutExpired):
        wk.run("kubeadm", "reset", "-f", timeout=1.5)
    os.unlink(wk.path("/etc/standin/reset-hang"))

    # ---- token delete, and a kubelet without credentials exits like the real one
    tid = new_token.split(".")[0]
    assert cp.run("kubeadm", "token", "delete", tid).stdout == 'bootstrap token "%s" deleted\n' % tid
    wk.systemd("start", "kubelet")

    def exited():
        with open(wk.path("/var/log/kubelet.log"), encoding="utf-8") as fh:
            text = fh.read()
        return text if "command failed" in text else None

    log = wait_for(exited, what="kubelet exit")
    assert "failed to load kubelet config file, path: /var/lib/kubelet/config.yaml" in log
    assert wk.systemd("is-active", "kubelet").returncode == 3

    # ---- control-plane reset wipes the API state (etcd data dir) and stops the API stand-in
    res = cp.run("kubeadm", "reset", "-f")
    assert res.returncode == 0, res.stderr
    assert "[reset] Deleted contents of the etcd data directory: /var/lib/etcd" in res.stdout
    assert not os.listdir(cp.path("/var/lib/etcd"))
    with pytest.raises(C.ConnError):
        admin.request("GET", "/readyz")


def test_token_list_format_matches_real(cluster, tmp_path):
    """`kubeadm token list` for a --ttl 0 token with the init description is laid out like the real capture."""
    cp, base = cluster[0], cluster[2]
    port = C.free_port()
    cfg = os.path.join(base, "init2.yaml")
    with open(cfg, "w") as fh:
        fh.write(INIT_CONFIG.replace("  ttl: 1h", "  ttl: 0s").replace("abcdef.0123456789abcdef",
                                                                       "123456.1234567890123456") % {"port": port})
    res = cp.run("kubeadm", "init", "--config", cfg, timeout=120)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        lst = cp.run("kubeadm", "token", "list").stdout
        assert lst == fixture_text("kubeadm-token-list-forever-never.txt")
        # init again on an initialised control plane: the real preflight errors
        res = cp.run("kubeadm", "init", "--config", cfg)
        assert res.returncode == 1
        assert "\t[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: " \
               "/etc/kubernetes/manifests/kube-apiserver.yaml already exists" in res.stderr
        assert "\t[ERROR Port-%d]: Port %d is in use" % (port, port) in res.stderr
        assert "\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty" in res.stderr
    finally:
        cp.run("kubeadm", "reset", "-f")
        cp.stop_all()
