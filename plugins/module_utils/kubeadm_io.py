# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The I/O side of kubeadm_node: reading the node's kubeadm/kubelet state and carrying out one planned action.

Every decision is made by the pure planner in ``kubeadm.py``; this module only reads files, runs commands through
``CommandRunner`` and applies the plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import pwd
import signal
import socket
import stat
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner, redacted_argv
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni, cni_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils import kubeadm as core


PROC = "/proc"
KILL_WAIT = 10  # seconds between SIGTERM and SIGKILL for stuck kubeadm processes
# Seconds a TCP connect from the node to the API may take while diagnosing a Node that is not Ready.
DIAGNOSIS_CONNECT_TIMEOUT = 3


class Runner(CommandRunner):
    """CommandRunner that records what it ran and also redacts anything shaped like a bootstrap token."""

    def __init__(self, *args, **kwargs):
        super(Runner, self).__init__(*args, **kwargs)
        self.log = []

    def run(self, argv, check=True, timeout=None, data=None, msg=None):
        started = time.time()
        entry = {"cmd": core.redact_tokens(" ".join(redacted_argv([str(a) for a in argv], self.redact)), self.redact),
                 "rc": None, "seconds": None}
        self.log.append(entry)
        try:
            rc, out, err = super(Runner, self).run(argv, check=check, timeout=timeout, data=data, msg=msg)
        finally:
            entry["seconds"] = round(time.time() - started, 1)
        entry["rc"] = rc
        return rc, out, err

    def fail(self, msg, argv, rc, out, err, **extra):
        if self.log and self.log[-1]["rc"] is None:
            self.log[-1]["rc"] = rc
        extra.setdefault("commands", self.log)
        super(Runner, self).fail(core.redact_tokens(msg, self.redact), argv, rc,
                                 core.redact_tokens(out, self.redact), core.redact_tokens(err, self.redact), **extra)


def _read(path, limit=1 << 20):
    try:
        with open(path, "r") as f:
            return f.read(limit)
    except (IOError, OSError, UnicodeDecodeError):
        return None


def _cert_fact(runner, pem, from_cryptography, openssl_argv, from_openssl):
    """One fact of a PEM certificate: with cryptography when importable, else from openssl's output; None when unknown."""
    if not pem:
        return None
    value = from_cryptography(pem)
    if value or core.HAS_CRYPTOGRAPHY:
        return value
    openssl = runner.binary("openssl", required=False)
    if not openssl:
        return None
    rc, out, unused_err = runner.run(openssl_argv(openssl), check=False, data=pem, timeout=30)
    return from_openssl(out) if rc == 0 else None


def cert_hash(runner, pem):
    """kubeadm CA pin of a PEM certificate."""
    return _cert_fact(runner, pem, core.spki_hash_from_cert_pem, core.openssl_pubkey_argv, core.spki_hash_from_pubkey_pem)


def cert_node_name(runner, pem):
    """Node name in a kubelet client certificate's subject (CN=system:node:<name>)."""
    return _cert_fact(runner, pem, core.node_name_from_cert_pem, core.openssl_subject_argv,
                      core.node_name_from_openssl_subject)


def operator_copy_current(params):
    """Read admin.conf and the operator's copy of it (contents, mode, owner) for core.copy_is_current."""
    source = _read(core.join_root(params["root"], core.PATHS["admin_conf"]))
    copy = _read(params["operator_kubeconfig"])
    try:
        st = os.stat(params["operator_kubeconfig"])
        mode, uid = st.st_mode, st.st_uid
    except OSError:
        mode = uid = None
    want_uid = None
    if params["operator_user"]:
        try:
            want_uid = pwd.getpwnam(params["operator_user"]).pw_uid
        except KeyError:
            want_uid = -1  # unknown user: never current, the copy task will say why
    return core.copy_is_current(source, copy, mode, uid, want_uid)


def read_static_pods(runner, cri_socket):
    """The control-plane static pods' container states (read-only; {} when crictl is missing or fails)."""
    crictl = runner.binary("crictl", required=False)
    if not crictl:
        return {}
    rc, out, unused_err = runner.run([crictl, "--runtime-endpoint", cri_socket, "ps", "-a", "-o", "json"], check=False)
    return core.static_pod_states(out) if rc == 0 else {}


def gather(runner, params):
    """Read the node's local state (files and read-only commands only)."""
    root = params["root"]

    def path(key):
        return core.join_root(root, core.PATHS[key])

    facts = {}
    for key in ("kubelet_conf", "bootstrap_kubelet_conf", "ca_crt", "kubelet_config", "apiserver_manifest",
                "admin_conf"):
        facts[key] = os.path.isfile(path(key))
    facts["etcd_data"] = os.path.isdir(path("etcd_member"))
    try:
        facts["manifests_nonempty"] = bool(os.listdir(path("manifests_dir")))
    except OSError:
        facts["manifests_nonempty"] = False
    if facts["kubelet_conf"]:
        text = _read(path("kubelet_conf"))
        facts["kubelet_conf_text"] = text
        kc = core.parse_kubeconfig(text)
        pem = kc["ca_pem"]
        if not pem and kc["ca_file"]:
            pem = _read(core.join_root(root, kc["ca_file"]))
        facts["kubelet_conf_ca_hash"] = cert_hash(runner, pem)
        client = kc["client_cert_pem"]
        if not client and kc["client_cert_file"]:
            client = _read(core.join_root(root, kc["client_cert_file"]))
        facts["kubelet_conf_node"] = cert_node_name(runner, client)
    if facts["ca_crt"]:
        facts["ca_crt_hash"] = cert_hash(runner, _read(path("ca_crt")))
    facts["cri_socket"] = params["cri_socket"]
    facts["cri_socket_present"] = os.path.exists(core.join_root(root, core.cri_socket_path(params["cri_socket"])))

    systemctl = runner.binary("systemctl")
    _rc, out, _err = runner.run([systemctl, "is-active", "kubelet"], check=False)
    facts["kubelet_active"] = (out or "").strip() or "unknown"
    _rc, out, _err = runner.run([systemctl, "is-enabled", "kubelet"], check=False)
    facts["kubelet_enabled"] = (out or "").strip() or "not-found"
    if facts["kubelet_active"] == "active":
        _rc, out, _err = runner.run([systemctl, "show", "-p", "ActiveEnterTimestampMonotonic", "kubelet"], check=False)
        props = core.parse_systemctl_show(out)
        facts["kubelet_active_seconds"] = core.active_seconds(
            props.get("ActiveEnterTimestampMonotonic"), _read("/proc/uptime"))
    return core.summarize_local(facts)


def gather_diagnosis(runner, params):
    """What the node says about a Node that is not Ready (read-only): can it reach the API, the runtime's own
    conditions, the kubelet's recent errors. Each part is None when it could not be read."""
    diagnosis = {"api_reachable": None, "api_error": None, "runtime_conditions": None, "kubelet_errors": None}
    host, port = core.endpoint_host_port(params.get("api_endpoint"))
    if host:
        try:
            socket.create_connection((host, port), timeout=DIAGNOSIS_CONNECT_TIMEOUT).close()
            diagnosis["api_reachable"] = True
        except (OSError, socket.error) as exc:
            diagnosis["api_reachable"] = False
            diagnosis["api_error"] = str(exc) or exc.__class__.__name__
    crictl = runner.binary("crictl", required=False)
    if crictl:
        rc, out, unused_err = runner.run(core.crictl_info_argv(crictl, params["cri_socket"]), check=False, timeout=15)
        if rc == 0:
            diagnosis["runtime_conditions"] = core.parse_runtime_conditions(out)
    journalctl = runner.binary("journalctl", required=False)
    if journalctl:
        rc, out, unused_err = runner.run(core.kubelet_errors_argv(journalctl), check=False, timeout=15)
        if rc == 0:
            diagnosis["kubelet_errors"] = core.parse_kubelet_errors("\n".join(reversed((out or "").splitlines())))
    return diagnosis


class Executor(object):
    """Carries out one planned action through the runner."""

    def __init__(self, module, runner, params, warn):
        self.module = module
        self.runner = runner
        self.params = params
        self.root = params["root"]
        self.warn = warn
        self.fallback_used = False
        self.systemctl = runner.binary("systemctl")

    def _kubeadm(self):
        return self.runner.binary("kubeadm", extra_paths=["/usr/bin", "/usr/local/bin"])

    def systemctl_run(self, verb, unit, now=False, check=True, timeout=120):
        return self.runner.run(core.systemctl_argv(self.systemctl, verb, unit, now=now), check=check, timeout=timeout)

    def ensure_kubelet(self, local, restart_running=False):
        if not core.kubelet_enabled(local):
            self.systemctl_run("enable", "kubelet")
        if restart_running or not core.kubelet_running(local):
            self.systemctl_run("restart", "kubelet")

    def wait_cri_socket(self):
        sock = core.join_root(self.root, core.cri_socket_path(self.params["cri_socket"]))
        deadline = time.time() + self.params["cri_socket_timeout"]
        while not os.path.exists(sock):
            if time.time() >= deadline:
                self.module.fail_json(msg="CRI socket %s not present after %d s: is %s running?" % (
                    sock, self.params["cri_socket_timeout"], self.params["runtime_service"]),
                    fallback_used=self.fallback_used, commands=self.runner.log)
            time.sleep(1)

    def reset(self):
        argv = core.reset_argv(self._kubeadm(), self.params["cri_socket"])
        rc, out, err = self.runner.run(argv, check=False, timeout=self.params["reset_timeout"])
        if rc == 0:
            return
        if not self.params["reset_fallback"]:
            self.runner.fail("kubeadm reset failed and reset_fallback is false", argv, rc, out, err)
        self.warn("kubeadm reset -f %s (rc %s); running the forced reset" % (
            "timed out" if rc == 124 else "failed", rc))
        self.forced_reset()

    def kill_kubeadm(self):
        """TERM, then KILL, every process that is ``kubeadm`` (exact name: comm or argv, see select_processes)."""
        proc = PROC
        entries = []
        for pid in os.listdir(proc) if os.path.isdir(proc) else []:
            if pid.isdigit():
                comm = _read(os.path.join(proc, pid, "comm"))
                cmdline = _read(os.path.join(proc, pid, "cmdline")) or ""
                if comm is not None:
                    entries.append((int(pid), comm.strip(), [a for a in cmdline.split("\0") if a]))
        pids = core.select_processes(entries, ["kubeadm"], exclude={os.getpid()})
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = []
            for pid in pids:
                try:
                    os.kill(pid, sig)
                    alive.append(pid)
                except OSError as exc:
                    if exc.errno != errno.ESRCH:
                        self.warn("cannot signal kubeadm pid %d: %s" % (pid, exc))
            pids = alive
            deadline = time.time() + KILL_WAIT
            while pids and time.time() < deadline:
                time.sleep(0.5)
                pids = [p for p in pids if _pid_alive(p)]
            if not pids:
                break
        return pids

    def forced_reset(self):
        self.fallback_used = True
        role = self.params["role"]
        # Killed before the stop: a `kubeadm reset` that hung in its own `systemctl stop kubelet` (a kubelet that
        # does not stop) left that stop job waiting, and another stop would only wait behind it.
        self.runner.run(core.systemctl_kill_argv(self.systemctl, "kubelet"), check=False, timeout=30)
        self.systemctl_run("stop", "kubelet", check=False)
        self.kill_kubeadm()
        crictl = self.runner.binary("crictl", required=False, extra_paths=["/usr/bin", "/usr/local/bin"])
        if crictl:
            self.runner.run(core.crictl_remove_all_pods_argv(crictl, self.params["cri_socket"]), check=False, timeout=60)
        self.systemctl_run("stop", self.params["runtime_service"], check=False)
        umount = self.runner.binary("umount", extra_paths=["/usr/bin", "/bin"])
        kubelet_dir = core.join_root(self.root, core.PATHS["kubelet_dir"])
        for mount in core.mounts_under(cni_io.read_mountpoints(), kubelet_dir):
            rc, out, err = self.runner.run(core.umount_lazy_argv(umount, mount), check=False, timeout=60)
            if rc != 0:
                self.warn("umount -l %s failed (rc %s): %s" % (mount, rc, (err or out).strip()))
        mountpoints = set(cni_io.read_mountpoints())
        netns_dirs = [core.join_root(self.root, d) for d in cni.DEFAULT_NETNS_DIRS]
        facts = {"netns": cni_io.observe_netns(netns_dirs, time.time(), cni_io.nsfs_device())}
        plan = cni.plan_cleanup(facts, only_stale=False, interfaces=[])
        for path in plan["remove"]["netns"]:
            error = cni_io.remove_netns_file(path, self.runner, umount, mountpoints)
            if error:
                self.warn("cannot remove %s: %s" % (path, error))
        mountpoints = set(cni_io.read_mountpoints())
        paths = core.fallback_paths(self.root, role)
        skipped = []
        for directory in paths["contents"]:
            remove_contents(directory, mountpoints, skipped)
        for path in paths["files"]:
            try:
                os.unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    self.warn("cannot remove %s: %s" % (path, exc))
        if skipped:
            self.warn("left mount points in place (never removed across a mount): %s" % ", ".join(sorted(skipped)))
        self.systemctl_run("start", self.params["runtime_service"])
        self.wait_cri_socket()

    def join(self):
        self.wait_cri_socket()
        p = self.params
        argv = core.join_argv(self._kubeadm(), p["api_endpoint"], p["token"], p["ca_cert_hash"], p["node_name"],
                              p["cri_socket"])
        rc, out, err = self.runner.run(argv, check=False, timeout=p["join_timeout"])
        if rc != 0:
            detail = core.describe_failure((out or "") + "\n" + (err or ""))
            self.runner.fail("kubeadm join failed" + (": " + detail if detail else ""), argv, rc, out, err,
                             fallback_used=self.fallback_used)
        self.systemctl_run("enable", "kubelet", now=True)

    def init(self):
        self.wait_cri_socket()
        argv = core.init_argv(self._kubeadm(), self.params["init_config"])
        rc, out, err = self.runner.run(argv, check=False, timeout=self.params["init_timeout"])
        if rc != 0:
            detail = core.describe_failure((out or "") + "\n" + (err or ""))
            self.runner.fail("kubeadm init failed" + (": " + detail if detail else ""), argv, rc, out, err)
        self.systemctl_run("enable", "kubelet", now=True)

    def execute(self, action, local, restart_running=False):
        if action == "restart_kubelet":
            self.ensure_kubelet(local, restart_running)
        elif action == "join":
            self.join()
        elif action == "reset_and_join":
            self.reset()
            self.join()
        elif action == "reset":
            self.reset()
        elif action == "init":
            self.init()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def remove_contents(directory, mountpoints, skipped):
    """Remove everything below ``directory`` without crossing a mount point or following a symlink."""
    try:
        dev = os.lstat(directory).st_dev
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        child = os.path.join(directory, name)
        try:
            st = os.lstat(child)
        except OSError:
            continue
        if child in mountpoints or st.st_dev != dev:
            skipped.append(child)
            continue
        if stat.S_ISDIR(st.st_mode):
            before = len(skipped)
            remove_contents(child, mountpoints, skipped)
            if len(skipped) == before:
                os.rmdir(child)
        else:
            os.unlink(child)


def run_module(module):
    started = time.time()
    params = dict(module.params)
    params["node_name"] = params["node_name"] or socket.gethostname().lower()
    try:
        params["ca_cert_hash"] = core.normalize_ca_hash(params["ca_cert_hash"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    runner = Runner(module, redact=[params["token"]] if params["token"] else [])
    local = gather(runner, params)
    state = dict(params, local=local, now=core.wall_clock())
    if core.needs_diagnosis(state):
        local["diagnosis"] = gather_diagnosis(runner, params)
    plan = core.plan(state)
    result = dict(action=plan["action"], reasons=plan["reasons"], local=local, node_name=params["node_name"],
                  fallback_used=False, changed=plan["action"] != "none", delete_api_node=plan["delete_api_node"],
                  restart_running=plan["restart_running"])
    for warning in plan["warnings"]:
        module.warn(warning)
    problem = plan["error"] or core.missing_message(plan)
    if problem and module.check_mode and not plan["error"]:
        # Check mode plans without join data (minting a token would change the cluster): say so in the
        # result, not as a warning, since a role plans this way before it fetches a token.
        result["missing"] = problem
    elif problem:
        module.fail_json(msg=core.redact_tokens(problem, runner.redact), commands=runner.log,
                         duration=round(time.time() - started, 1), **result)
    if module._diff:
        result["diff"] = dict(before=local, after=core.predicted_local(local, plan["action"]))
    if not module.check_mode and plan["action"] != "none":
        executor = Executor(module, runner, params, module.warn)
        executor.execute(plan["action"], local, plan["restart_running"])
        result["fallback_used"] = executor.fallback_used
    if params["role"] == "control_plane" and params["state"] == "present":
        result["static_pods"] = read_static_pods(runner, params["cri_socket"])
    if params["operator_kubeconfig"]:
        result["operator_kubeconfig_current"] = operator_copy_current(params)
    result["commands"] = runner.log
    result["duration"] = round(time.time() - started, 1)
    module.exit_json(**result)
