"""kubeadm_node module: main() with a patched AnsibleModule on a temporary root.

run_command is faked (a responder maps argv to rc/stdout/stderr and records every call), so the tests check the
exact argv (timeouts included), that check mode runs nothing mutating, that the forced reset removes only
kubeadm/kubelet/CNI state (never /var/lib/longhorn, never across a mount point), and that the join token never
appears in any result or failure.  The kubelet.conf and CA are the constructed fixtures in fixtures/kubeadm.
"""

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.module_utils import kubeadm as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import kubeadm_io
from ansible_collections.dgx_spark.cluster.plugins.modules import kubeadm_node
from module_harness import ExitJson, FailJson, load  # noqa: E402  (sibling helper)

TOKEN = "q7x2kd.8n4m1p0z9y3w6v5t"
CA_A = "sha256:8d6e659203b93eb44a3cab2ba733c443c85d23400d8e1a5ed40e514e6d3f59aa"
SOCK = "unix:///run/containerd/containerd.sock"
READ_ONLY = (("systemctl", "is-active"), ("systemctl", "is-enabled"), ("systemctl", "show"), ("openssl", "x509"),
             ("journalctl", "-u"))


def is_mutating(call):
    """A call that may change the node (everything but the module's reads, the diagnosis's included)."""
    argv = call["argv"]
    if os.path.basename(argv[0]) == "crictl" and argv[-3:] == ["info", "-o", "json"]:
        return False
    return (os.path.basename(argv[0]), argv[1]) not in READ_ONLY


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def joined_worker(root):
    """A worker as kubeadm join leaves it, plus data that must survive any reset."""
    r = str(root)
    write(r + "/etc/kubernetes/kubelet.conf", load("kubeadm", "constructed-kubelet-conf-worker.yaml"))
    write(r + "/etc/kubernetes/pki/ca.crt", load("kubeadm", "constructed-ca-a.crt"))
    write(r + "/etc/kubernetes/kubeadm-config.yaml", "kind: JoinConfiguration\n")  # not kubeadm's: kept
    write(r + "/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\n")
    write(r + "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/cache/file", "x")
    write(r + "/var/lib/kubelet/pki/kubelet-client-current.pem", "")
    write(r + "/etc/cni/net.d/10-calico.conflist", "{}")
    write(r + "/var/lib/cni/networks/k8s-pod-network/lock", "")
    write(r + "/run/netns/cni-45b9e5e5-8d10-10e3-d4cc-8d3fadea0ee0", "")
    write(r + "/run/containerd/containerd.sock", "")
    write(r + "/var/lib/longhorn/replicas/pvc-1/volume-head-000.img", "data")
    write(r + "/var/lib/etcd/member/snap/db", "etcd")  # a worker never owns etcd: kept on a worker reset
    return r


def fresh_worker(root):
    r = str(root)
    write(r + "/run/containerd/containerd.sock", "")
    write(r + "/var/lib/longhorn/replicas/pvc-1/volume-head-000.img", "data")
    return r


def control_plane(root):
    r = joined_worker(root)
    write(r + "/etc/kubernetes/manifests/kube-apiserver.yaml", "kind: Pod\n")
    write(r + "/etc/kubernetes/admin.conf", "kind: Config\n")
    return r


# klog lines in the kubelet's format (written for this test): a kubelet whose client certificate the API rejects.
KUBELET_UNAUTHORIZED = (
    'E1130 00:40:02.312913    2381 kubelet_node_status.go:535] "Error updating node status, will retry" '
    'err="error getting node \\"spark-ba63\\": Unauthorized"\n')


def ready_node(status="True", since="2025-12-31T23:00:00Z"):
    return {"kind": "Node", "metadata": {"name": "spark-ba63"},
            "status": {"conditions": [{"type": "Ready", "status": status, "lastTransitionTime": since,
                                       "reason": "KubeletReady", "message": "kubelet is posting ready status"}]}}


def responder(kubelet_active="active", kubelet_enabled="enabled", reset_rc=0, join_rc=0, join_out="",
              join_err="", init_rc=0):
    """Fake command results; argv arrives with the `timeout --kill-after=5 N` prefix stripped."""

    def respond(argv, data):
        name = os.path.basename(argv[0])
        if name == "systemctl" and argv[1] == "is-active":
            return (0 if kubelet_active == "active" else 3), kubelet_active + "\n", ""
        if name == "systemctl" and argv[1] == "is-enabled":
            return (0 if kubelet_enabled == "enabled" else 1), kubelet_enabled + "\n", ""
        if name == "systemctl" and argv[1] == "show":
            return 0, "ActiveEnterTimestampMonotonic=1000000\n", ""
        if name == "kubeadm" and argv[1] == "reset":
            return reset_rc, "[reset] Stopping the kubelet service\n", "" if reset_rc == 0 else "context deadline"
        if name == "kubeadm" and argv[1] == "join":
            return join_rc, join_out, join_err
        if name == "kubeadm" and argv[1] == "init":
            return init_rc, "Your Kubernetes control-plane has initialized successfully!\n", ""
        if name == "journalctl":
            return 0, KUBELET_UNAUTHORIZED, ""
        if name == "crictl" and "info" in argv:
            return 0, '{"status": {"conditions": [{"type": "RuntimeReady", "status": true}, ' \
                      '{"type": "NetworkReady", "status": true}]}}', ""
        return 0, "", ""

    return respond


def run(args, respond=None, check_mode=False, diff=False, monkeypatch=None, api_connect=None, connects=None):
    """Run main(); return (result, calls, warnings, removed_paths, killed). No packet leaves: the diagnosis's TCP
    connect to the API is faked (``api_connect``: None succeeds, an exception instance is raised) and recorded in
    ``connects``."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    respond = respond or responder()
    calls, warnings = [], []

    def run_command(self, argv, data=None, **kwargs):
        argv = list(argv)
        limit = None
        if os.path.basename(argv[0]) == "timeout":
            limit = int(argv[2])
            argv = argv[3:]
        calls.append({"argv": argv, "timeout": limit, "env": kwargs.get("environ_update")})
        return respond(argv, data)

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise FailJson(kwargs)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name

    def warn(self, message):
        warnings.append(message)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
    killed = []
    monkeypatch.setattr(kubeadm_io.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    monkeypatch.setattr(kubeadm_io, "PROC", str(args.get("root", "/")) + "/proc")
    monkeypatch.setattr(kubeadm_io, "KILL_WAIT", 0)
    monkeypatch.setattr(kubeadm_io.time, "sleep", lambda s: None)

    class Connection(object):
        def close(self):
            pass

    def create_connection(address, timeout=None):
        (connects if connects is not None else []).append((address, timeout))
        if api_connect is not None:
            raise api_connect
        return Connection()

    monkeypatch.setattr(kubeadm_io.socket, "create_connection", create_connection)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            kubeadm_node.main()
    return caught.value.args[0], calls, warnings, killed


def argvs(calls):
    return [[os.path.basename(c["argv"][0])] + c["argv"][1:] for c in calls]


def assert_read_only(calls):
    for c in calls:
        key = (os.path.basename(c["argv"][0]), c["argv"][1])
        assert key in READ_ONLY, c["argv"]


def assert_no_token(*things):
    for thing in things:
        assert TOKEN not in json.dumps(thing, default=str)


WORKER = {"role": "worker", "node_name": "spark-ba63", "api_endpoint": "10.10.10.1:6443", "token": TOKEN,
          "ca_cert_hash": CA_A}


# ---------------------------------------------------------------------------------------------


def test_healthy_worker_does_nothing(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, warnings, k = run(dict(WORKER, root=root, api_node=ready_node()), monkeypatch=monkeypatch)
    assert result["action"] == "none" and result["changed"] is False
    assert result["local"]["kubelet_conf_ca_hash"] == CA_A and result["local"]["ca_crt_hash"] == CA_A
    assert result["local"]["kubelet_conf_server"] == "https://10.10.10.1:6443"
    assert result["fallback_used"] is False and isinstance(result["duration"], float)
    assert_read_only(calls)
    assert all(c["env"] == {"LC_ALL": "C", "LANG": "C"} for c in calls)
    assert_no_token(result, warnings)


def test_check_mode_rejoin_runs_nothing_mutating(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    removed = []
    for name in ("unlink", "remove", "rmdir"):
        monkeypatch.setattr(kubeadm_io.os, name, lambda *a, **k: removed.append(a))
    result, calls, warnings, killed = run(dict(WORKER, root=root, api_node=None), check_mode=True, diff=True,
                                          monkeypatch=monkeypatch)
    assert result["action"] == "reset_and_join"
    assert result["changed"] is True
    assert any("does not exist in the API" in r for r in result["reasons"])
    assert_read_only(calls)
    assert removed == [] and killed == []
    assert os.path.exists(root + "/etc/kubernetes/kubelet.conf")
    assert result["diff"]["before"]["kubelet_conf"] is True
    assert result["diff"]["after"]["kubelet_active"] == "active"
    assert_no_token(result, warnings)


def test_check_mode_missing_join_data_is_reported_not_warned(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    args = dict(WORKER, root=root, api_node=None)
    del args["token"]
    result, calls, warnings, k = run(args, respond=responder(kubelet_active="activating"), check_mode=True,
                                     monkeypatch=monkeypatch)
    assert result["action"] == "join" and result["changed"] is True
    assert result["missing"].endswith("this option is missing: token")
    assert warnings == []
    assert_read_only(calls)


def test_missing_join_data_fails_naming_options(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    args = {"role": "worker", "node_name": "spark-ba63", "root": root}
    result, calls, w, k = run(args, respond=responder(kubelet_active="activating"), monkeypatch=monkeypatch)
    assert result["failed"] is True and result["action"] == "join"
    assert result["msg"].endswith("these options are missing: api_endpoint, token, ca_cert_hash")
    assert_read_only(calls)


def test_fresh_worker_joins_with_exact_argv(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    result, calls, warnings, k = run(dict(WORKER, root=root, api_node=None),
                                     respond=responder(kubelet_active="activating", kubelet_enabled="enabled",
                                                       join_out=load("kubeadm", "join-success-v1.33-with-prompt.txt")),
                                     monkeypatch=monkeypatch)
    assert result["action"] == "join" and result["changed"] is True
    mutating = [c for c in calls if is_mutating(c)]
    assert mutating[0]["argv"] == ["/usr/bin/kubeadm", "join", "10.10.10.1:6443", "--token", TOKEN,
                                   "--discovery-token-ca-cert-hash", CA_A, "--node-name", "spark-ba63",
                                   "--cri-socket", SOCK]
    assert mutating[0]["timeout"] == 420
    assert mutating[1]["argv"] == ["/usr/bin/systemctl", "enable", "--now", "kubelet"]
    assert len(mutating) == 2
    # the token was passed to kubeadm, and is nowhere in what the module returns
    assert_no_token(result, warnings)
    assert "--token ******** " in result["commands"][-2]["cmd"]


def test_rejoin_after_node_deleted(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, warnings, k = run(dict(WORKER, root=root, api_node=None, reset_timeout=90),
                                     monkeypatch=monkeypatch)
    assert result["action"] == "reset_and_join" and result["fallback_used"] is False
    mutating = [c for c in calls if is_mutating(c)]
    assert mutating[0]["argv"] == ["/usr/bin/kubeadm", "reset", "-f", "--cri-socket", SOCK]
    assert mutating[0]["timeout"] == 90
    assert mutating[1]["argv"][1] == "join" and mutating[1]["timeout"] == 420
    assert mutating[2]["argv"] == ["/usr/bin/systemctl", "enable", "--now", "kubelet"]
    assert_no_token(result, warnings)


def test_forced_reset_when_kubeadm_reset_times_out(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    fake_proc = tmp_path / "proc"
    for pid, comm, cmdline in (("4242", "kubeadm\n", "/usr/bin/kubeadm\0join\0"),
                               ("4243", "kubelet\n", "/usr/bin/kubelet\0"),
                               ("4244", "kubeadm-helper\n", "kubeadm-helper\0"),
                               ("4245", "python3\n", "python3\0/usr/local/bin/kubeadm\0reset\0-f\0"),
                               ("4246", "timeout\n", "timeout\0120\0kubeadm\0reset\0")):
        write(str(fake_proc / pid / "comm"), comm)
        write(str(fake_proc / pid / "cmdline"), cmdline)
    result, calls, warnings, killed = run(dict(WORKER, root=root, api_node=None),
                                          respond=responder(reset_rc=124), monkeypatch=monkeypatch)
    assert result["action"] == "reset_and_join" and result["fallback_used"] is True
    assert any("timed out" in w for w in warnings)
    seq = argvs([c for c in calls if is_mutating(c)])
    assert seq[0] == ["kubeadm", "reset", "-f", "--cri-socket", SOCK]
    # The kubelet is killed before it is stopped: a stop that hung inside kubeadm reset would block another stop.
    assert seq[1] == ["systemctl", "kill", "--signal=SIGKILL", "kubelet"]
    assert seq[2] == ["systemctl", "stop", "kubelet"]
    assert seq[3] == ["crictl", "--runtime-endpoint", SOCK, "rmp", "--all", "--force"]
    assert seq[4] == ["systemctl", "stop", "containerd"]
    assert seq[5] == ["systemctl", "start", "containerd"]
    assert seq[6][:2] == ["kubeadm", "join"]
    assert seq[7] == ["systemctl", "enable", "--now", "kubelet"]
    # only the processes that are kubeadm were signalled (TERM; os.kill is faked so they "stay alive" -> KILL)
    assert set(pid for pid, _sig in killed) == {4242, 4245}
    # kubeadm/kubelet/CNI state gone ...
    for gone in ("etc/kubernetes/kubelet.conf", "etc/kubernetes/pki/ca.crt", "var/lib/kubelet/config.yaml",
                 "var/lib/kubelet/pods", "etc/cni/net.d/10-calico.conflist", "var/lib/cni/networks",
                 "run/netns/cni-45b9e5e5-8d10-10e3-d4cc-8d3fadea0ee0"):
        assert not os.path.exists(os.path.join(root, gone)), gone
    # ... directories themselves kept, data and foreign files untouched
    assert os.path.isdir(root + "/var/lib/kubelet") and os.path.isdir(root + "/etc/kubernetes")
    assert open(root + "/var/lib/longhorn/replicas/pvc-1/volume-head-000.img").read() == "data"
    assert os.path.exists(root + "/etc/kubernetes/kubeadm-config.yaml")
    assert os.path.exists(root + "/var/lib/etcd/member/snap/db")  # worker reset leaves etcd alone
    assert_no_token(result, warnings)


def test_forced_reset_on_control_plane_removes_etcd(tmp_path, monkeypatch):
    root = control_plane(tmp_path)
    result, calls, warnings, k = run({"role": "control_plane", "state": "reset", "root": root},
                                     respond=responder(reset_rc=1), monkeypatch=monkeypatch)
    assert result["action"] == "reset" and result["fallback_used"] is True
    assert not os.path.exists(root + "/var/lib/etcd/member")
    assert not os.path.exists(root + "/etc/kubernetes/admin.conf")
    assert not os.path.exists(root + "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert open(root + "/var/lib/longhorn/replicas/pvc-1/volume-head-000.img").read() == "data"
    assert not any(a[1] == "join" for a in argvs(calls))


def test_forced_reset_never_crosses_a_mount_point(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    volume = root + "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc-1/mount"
    write(volume + "/precious", "user data")
    real_read = kubeadm_io.cni_io.read_mountpoints
    # the lazy unmount "failed": the volume is still mounted when the state is removed
    monkeypatch.setattr(kubeadm_io.cni_io, "read_mountpoints", lambda *a: real_read(*a) + [volume])
    result, calls, warnings, k = run(dict(WORKER, root=root, api_node=None, state="reset"),
                                     respond=responder(reset_rc=124), monkeypatch=monkeypatch)
    assert result["fallback_used"] is True
    assert ["umount", "-l", volume] in argvs(calls)
    assert open(volume + "/precious").read() == "user data"
    assert any("left mount points in place" in w and volume in w for w in warnings)
    assert not os.path.exists(root + "/var/lib/kubelet/config.yaml")


def test_reset_failure_without_fallback_fails(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, w, k = run(dict(WORKER, root=root, api_node=None, reset_fallback=False),
                              respond=responder(reset_rc=124), monkeypatch=monkeypatch)
    assert result["failed"] is True
    assert result["msg"] == "kubeadm reset failed and reset_fallback is false (timed out)"
    assert result["rc"] == 124
    assert os.path.exists(root + "/etc/kubernetes/kubelet.conf")
    assert not any(a[1] == "join" for a in argvs(calls))


def test_join_failure_never_leaks_the_token(tmp_path, monkeypatch):
    """kubeadm echoing its own command line (as in the real captures) must not leak the token."""
    root = fresh_worker(tmp_path)
    echoed = load("kubeadm", "join-fail-node-ready-exists-modern-crio.txt").replace("bdlbwb.mw177jqewo3t53ql", TOKEN)
    result, calls, warnings, k = run(dict(WORKER, root=root, api_node=None),
                                     respond=responder(kubelet_active="inactive", join_rc=1, join_out=echoed,
                                                       join_err="kubeadm join --token %s failed" % TOKEN),
                                     monkeypatch=monkeypatch)
    assert result["failed"] is True
    assert result["msg"].startswith('kubeadm join failed: phase kubelet-start: a Node with name "ths-pc-3"')
    assert "delete the Ready Node ths-pc-3 from the API before re-joining" in result["msg"]
    assert TOKEN in json.dumps([c["argv"] for c in calls])  # it was passed to kubeadm ...
    assert_no_token(result, warnings)  # ... and appears in no result field
    assert "********" in result["cmd"] and "********" in result["stderr"]


def test_join_timeout_reported(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    result, c, warnings, k = run(dict(WORKER, root=root, api_node=None, join_timeout=5),
                                 respond=responder(kubelet_active="inactive", join_rc=124), monkeypatch=monkeypatch)
    assert result["failed"] is True and result["msg"] == "kubeadm join failed (timed out)"
    assert_no_token(result, warnings)


def test_token_shaped_strings_redacted_even_when_not_the_option(tmp_path, monkeypatch):
    result, c, w, k = run({"role": "control_plane", "root": fresh_worker(tmp_path), "cluster_exists": False,
                           "init_config": "/etc/kubernetes/kubeadm-config.yaml"},
                          respond=lambda argv, data: (1, "kubeadm join 10.10.10.1:6443 --token abcdef.0123456789abcdef",
                                                      "") if argv[1:2] == ["init"] else responder(
                              kubelet_active="inactive")(argv, data),
                          monkeypatch=monkeypatch)
    assert result["failed"] is True
    assert "abcdef.0123456789abcdef" not in json.dumps(result)


def test_restart_kubelet(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node("Unknown")),
                              respond=responder(kubelet_active="inactive", kubelet_enabled="disabled"),
                              monkeypatch=monkeypatch)
    assert result["action"] == "restart_kubelet"
    seq = argvs([c for c in calls if is_mutating(c)])
    assert seq == [["systemctl", "enable", "kubelet"], ["systemctl", "restart", "kubelet"]]


def test_control_plane_init_exact_argv(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    result, calls, w, k = run({"role": "control_plane", "node_name": "spark-2959", "root": root,
                               "cluster_exists": False, "init_config": "/etc/kubernetes/kubeadm-config.yaml"},
                              respond=responder(kubelet_active="inactive"), monkeypatch=monkeypatch)
    assert result["action"] == "init"
    mutating = [c for c in calls if is_mutating(c)]
    assert mutating[0]["argv"] == ["/usr/bin/kubeadm", "init", "--config", "/etc/kubernetes/kubeadm-config.yaml",
                                   "--skip-token-print"]
    assert mutating[0]["timeout"] == 600
    assert mutating[1]["argv"] == ["/usr/bin/systemctl", "enable", "--now", "kubelet"]


def test_control_plane_refuses_init_over_existing_cluster(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    result, calls, w, k = run({"role": "control_plane", "root": root, "cluster_exists": True,
                               "init_config": "/etc/kubernetes/kubeadm-config.yaml"},
                              respond=responder(kubelet_active="inactive"), monkeypatch=monkeypatch)
    assert result["failed"] is True and "refusing to init over an existing cluster" in result["msg"]
    assert_read_only(calls)


def test_control_plane_restarts_kubelet_when_files_present(tmp_path, monkeypatch):
    root = control_plane(tmp_path)
    result, calls, w, k = run({"role": "control_plane", "root": root, "cluster_exists": False},
                              respond=responder(kubelet_active="inactive"), monkeypatch=monkeypatch)
    assert result["action"] == "restart_kubelet"
    assert argvs(calls)[-2] == ["systemctl", "restart", "kubelet"]
    # Then, read-only, the static pods' containers for the role's health check.
    assert argvs(calls)[-1] == ["crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock", "ps", "-a",
                                "-o", "json"]
    assert "static_pods" in result


def test_cri_socket_missing_fails_before_join(tmp_path, monkeypatch):
    root = str(tmp_path)
    result, calls, w, k = run(dict(WORKER, root=root, api_node=None, cri_socket_timeout=0),
                              respond=responder(kubelet_active="inactive"), monkeypatch=monkeypatch)
    assert result["failed"] is True and "CRI socket" in result["msg"] and "not present after 0 s" in result["msg"]
    assert not any(a[1] == "join" for a in argvs(calls))


def test_ca_hash_through_openssl_when_cryptography_missing(tmp_path, monkeypatch):
    """Without cryptography the pin comes from `openssl x509 -noout -pubkey` (certificate on stdin)."""
    import subprocess

    root = joined_worker(tmp_path)
    monkeypatch.setattr(core, "HAS_CRYPTOGRAPHY", False)
    fed = []

    def respond(argv, data):
        if os.path.basename(argv[0]) == "openssl":
            fed.append(data)
            done = subprocess.run(["openssl"] + argv[1:], input=data, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        return responder()(argv, data)

    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node()), respond=respond,
                              monkeypatch=monkeypatch)
    assert result["local"]["kubelet_conf_ca_hash"] == CA_A and result["local"]["ca_crt_hash"] == CA_A
    assert ["openssl", "x509", "-noout", "-pubkey"] in argvs(calls)
    assert all("BEGIN CERTIFICATE" in d for d in fed)
    assert result["action"] == "none"


def test_other_ca_pin_forces_rejoin(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    other = "sha256:5d12d53a330e0f1e26803a00750015eda2190f74cef6d2701cbd65e87c07c0ea"
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node(), ca_cert_hash=other),
                              check_mode=True, monkeypatch=monkeypatch)
    assert result["action"] == "reset_and_join"
    assert any("trusts a different CA" in r for r in result["reasons"])


def test_bad_ca_cert_hash_option(tmp_path, monkeypatch):
    result, calls, w, k = run(dict(WORKER, root=str(tmp_path), ca_cert_hash="sha256:nothex"),
                              monkeypatch=monkeypatch)
    assert result["failed"] is True and "sha256:<64 hex digits>" in result["msg"]
    assert calls == []


def test_state_reset_on_clean_node_is_idempotent(tmp_path, monkeypatch):
    root = fresh_worker(tmp_path)
    result, calls, w, k = run({"role": "worker", "state": "reset", "root": root},
                              respond=responder(kubelet_active="activating"), monkeypatch=monkeypatch)
    assert result["action"] == "none" and result["changed"] is False
    assert_read_only(calls)


def test_every_scenario_keeps_the_token_out(tmp_path, monkeypatch):
    """Sweep: every action, success and failure, check mode or not: the token never appears."""
    scenarios = [
        (joined_worker, dict(api_node=ready_node()), responder(), False),
        (joined_worker, dict(api_node=None), responder(), False),
        (joined_worker, dict(api_node=None), responder(reset_rc=124, join_rc=1, join_out=TOKEN), False),
        (fresh_worker, dict(api_node=None), responder(kubelet_active="inactive", join_err=TOKEN, join_rc=2), False),
        (fresh_worker, dict(api_node=None), responder(kubelet_active="inactive"), True),
        (joined_worker, dict(api_node=None, cluster_exists=False), responder(), False),
        (joined_worker, dict(api_node=ready_node("Unknown", "2020-01-01T00:00:00Z")), responder(), False),
    ]
    for index, (build, extra, respond, check) in enumerate(scenarios):
        root = build(tmp_path / str(index))
        result, calls, warnings, k = run(dict(WORKER, root=root, **extra), respond=respond, check_mode=check,
                                         diff=True, monkeypatch=monkeypatch)
        assert_no_token(result, warnings)


def test_stale_ready_node_of_a_wiped_worker_is_planned_not_refused(tmp_path, monkeypatch):
    # A reinstalled worker whose Node is still Ready in the API: the planning call (check mode, no token yet)
    # describes the repair (delete the Node, then join) instead of failing.
    root = fresh_worker(tmp_path)
    args = dict(WORKER, root=root, api_node=ready_node())
    del args["token"]
    result, calls, warnings, k = run(args, respond=responder(kubelet_active="inactive"), check_mode=True,
                                     monkeypatch=monkeypatch)
    assert "failed" not in result, result
    assert result["action"] == "join" and result["delete_api_node"] is True
    assert any("the stale Node is deleted before the join" in r for r in result["reasons"])
    assert_read_only(calls)


def test_operator_kubeconfig_copy_reported_current_only_when_identical_private_and_owned(tmp_path, monkeypatch):
    root = control_plane(tmp_path)
    copy = str(tmp_path / "home" / "spark" / ".kube" / "config")
    args = {"role": "control_plane", "root": root, "cluster_exists": True, "operator_kubeconfig": copy,
            "operator_user": "root"}
    result, calls, w, k = run(dict(args), monkeypatch=monkeypatch)
    assert result["operator_kubeconfig_current"] is False  # absent
    write(copy, "kind: Config\n")
    os.chmod(copy, 0o644)
    assert run(dict(args), monkeypatch=monkeypatch)[0]["operator_kubeconfig_current"] is False  # readable by all
    os.chmod(copy, 0o600)
    assert run(dict(args), monkeypatch=monkeypatch)[0]["operator_kubeconfig_current"] is True
    write(copy, "kind: Config\nold: true\n")
    os.chmod(copy, 0o600)
    assert run(dict(args), monkeypatch=monkeypatch)[0]["operator_kubeconfig_current"] is False  # stale content
    write(copy, "kind: Config\n")
    os.chmod(copy, 0o600)
    assert run(dict(args, operator_user="nobody"), monkeypatch=monkeypatch)[0]["operator_kubeconfig_current"] is False
    assert result["action"] == "none"
    assert [argv[:2] for argv in argvs(calls)] == [["systemctl", "is-active"], ["systemctl", "is-enabled"],
                                                   ["systemctl", "show"], ["crictl", "--runtime-endpoint"]]


def test_not_ready_beyond_grace_restarts_the_running_kubelet_with_the_diagnosis(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    connects = []
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node("Unknown")), monkeypatch=monkeypatch,
                              connects=connects)
    assert result["action"] == "restart_kubelet"
    assert connects == [(("10.10.10.1", 6443), kubeadm_io.DIAGNOSIS_CONNECT_TIMEOUT)]
    assert result["local"]["diagnosis"]["kubelet_errors"][0].endswith('Unauthorized"')
    text = "; ".join(result["reasons"])
    assert "this node reaches the API at 10.10.10.1:6443" in text and "Unauthorized" in text
    seq = argvs([c for c in calls if is_mutating(c)])
    assert seq == [["systemctl", "restart", "kubelet"]]  # restarted although it is active


def test_not_ready_and_api_unreachable_fails_with_the_diagnosis_and_changes_nothing(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node("Unknown")), monkeypatch=monkeypatch,
                              api_connect=OSError(113, "No route to host"))
    assert result["failed"] and result["action"] == "none"
    assert "this node cannot reach the API at 10.10.10.1:6443: [Errno 113] No route to host" in result["msg"]
    assert "Neither a kubelet restart nor a re-join can fix that" in result["msg"]
    assert not [c for c in calls if is_mutating(c)]


def test_ready_node_reads_no_diagnosis(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    connects = []
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node("True")), monkeypatch=monkeypatch,
                              connects=connects)
    assert result["action"] == "none" and "diagnosis" not in result["local"] and connects == []
    assert not [c for c in calls if os.path.basename(c["argv"][0]) in ("crictl", "journalctl")]


def test_after_a_restart_a_node_still_unknown_is_re_joined(tmp_path, monkeypatch):
    root = joined_worker(tmp_path)
    result, calls, w, k = run(dict(WORKER, root=root, api_node=ready_node("Unknown", since="2025-12-31T23:59:59Z"),
                                   kubelet_restarted=True), check_mode=True, monkeypatch=monkeypatch)
    assert result["action"] == "reset_and_join" and result["delete_api_node"] is True
    assert any("is still Ready=Unknown" in r for r in result["reasons"])
