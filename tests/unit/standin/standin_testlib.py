# -*- coding: utf-8 -*-
# Tests of the TEST STAND-IN (tests/standin), which is NOT Kubernetes: they prove the stand-in behaves the way the
# collection's roles rely on (real kubernetes client, real kubernetes.core modules, real kubeadm/crictl syntax).
# Everything listens on 127.0.0.1 only; every process a test starts is stopped by its pid at teardown.
"""Helpers for the stand-in tests: a throw-away PKI, API stand-in processes, a fake systemctl, STANDIN_ROOT nodes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STANDIN = os.path.join(REPO, "tests", "standin")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

import standin_common as C  # noqa: E402

if shutil.which("openssl") is None:  # pragma: no cover
    pytest.skip("the stand-in needs the openssl CLI", allow_module_level=True)


def fixture_text(name):
    """A copied real capture without its '#@ ' provenance header."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return "".join(line for line in fh if not line.startswith("#@ "))


class Pki:
    def __init__(self, d):
        self.dir = d
        self.ca_crt, self.ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        C.gen_ca(self.ca_crt, self.ca_key, algo="ECDSA-P256")
        cert, key = C.gen_signed(self.ca_crt, self.ca_key, "kube-apiserver", kind="server",
                                 sans=["127.0.0.1", "localhost"], algo="ECDSA-P256")
        self.srv_crt, self.srv_key = self._write("apiserver", cert, key)
        self.ca_pem = open(self.ca_crt, "rb").read()
        self.admin = C.gen_signed(self.ca_crt, self.ca_key, "kubernetes-admin", ["kubeadm:cluster-admins"],
                                  algo="ECDSA-P256")
        self.node_a = C.gen_signed(self.ca_crt, self.ca_key, "system:node:spark-ba63", ["system:nodes"],
                                   algo="ECDSA-P256")

    def _write(self, name, cert, key):
        c, k = os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key")
        with open(c, "wb") as fh:
            fh.write(cert)
        with open(k, "wb") as fh:
            fh.write(key)
        return c, k

    def kubeconfig(self, server, path, who="admin"):
        cert, key = getattr(self, who)
        kc = C.kubeconfig_dict(server, self.ca_pem, "kubernetes-admin" if who == "admin" else who,
                               cert_pem=cert, key_pem=key)
        with open(path, "w") as fh:
            fh.write(C.yaml_dump(kc))
        return path


class ApiServer:
    """One API stand-in process on 127.0.0.1 with a fresh data dir."""

    def __init__(self, pki, data_dir, extra=()):
        self.pki, self.data_dir, self.extra = pki, data_dir, list(extra)
        self.port = C.free_port()
        self.server = "https://127.0.0.1:%d" % self.port
        self.proc = None
        self.log = os.path.join(os.path.dirname(data_dir), "apiserver-%d.log" % self.port)

    def start(self):
        args = [sys.executable, os.path.join(STANDIN, "apiserver.py"), "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1", "--secure-port", str(self.port),
                "--tls-cert-file", self.pki.srv_crt, "--tls-private-key-file", self.pki.srv_key,
                "--client-ca-file", self.pki.ca_crt, "--cluster-signing-key-file", self.pki.ca_key,
                "--data-dir", self.data_dir, "--controller-interval", "0.2"] + self.extra
        env = dict(os.environ)
        env.pop("STANDIN_ROOT", None)
        env["STANDIN_CONFIG"] = os.path.join(os.path.dirname(self.data_dir), "no-such-standin-config")
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        anon = C.ApiClient(self.server, self.pki.ca_pem)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                anon.request("GET", "/healthz", raw=True)  # any HTTP answer: the server is up
                return self
            except C.ConnError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("apiserver stand-in did not start: %s" % open(self.log).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, who="admin", token=None):
        if token is not None:
            return C.ApiClient(self.server, self.pki.ca_pem, token=token)
        if who is None:
            return C.ApiClient(self.server, self.pki.ca_pem)
        cert, key = getattr(self.pki, who)
        return C.ApiClient(self.server, self.pki.ca_pem, cert, key)


def wait_for(pred, timeout=10.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# ----------------------------------------------------------------------------------------------------------------------
# A fake systemctl for STANDIN_ROOT trees: it really starts the stand-in kubelet / API server as processes (pidfiles
# under <root>/run/fake-systemd) and tracks "containerd" as a flag. Only for these tests.
# ----------------------------------------------------------------------------------------------------------------------

FAKE_SYSTEMCTL = r'''#!%(python)s
# test double of systemctl for the stand-in tests (tests/unit/standin); NOT systemd
import os, signal, subprocess, sys, time
root = os.environ["STANDIN_ROOT"]
state = os.path.join(root, "run", "fake-systemd")
os.makedirs(state, exist_ok=True)
STANDIN = %(standin)r
UNITS = {"kubelet": [sys.executable, os.path.join(STANDIN, "kubelet")],
         "standin-apiserver": [sys.executable, os.path.join(STANDIN, "apiserver.py"), "--from-manifests",
                               "/etc/kubernetes/manifests", "--controller-interval", "0.2",
                               "--pod-gc-quarantine", "1"],
         "containerd": None}
args = [a for a in sys.argv[1:] if not a.startswith("-")]
quiet = any(a in ("--quiet", "-q") for a in sys.argv[1:])
with open(os.path.join(state, "calls.log"), "a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\n")
cmd, units = (args[0] if args else ""), [u[:-8] if u.endswith(".service") else u for u in args[1:]]

def pidfile(u):
    return os.path.join(state, u + ".pid")

def running(u):
    if UNITS.get(u, 0) is None:
        return os.path.exists(os.path.join(state, u + ".active"))
    try:
        pid = int(open(pidfile(u)).read())
        with open("/proc/%%d/stat" %% pid) as fh:
            return fh.read().split(") ", 1)[1][0] not in "ZX"
    except (OSError, ValueError, IndexError):
        return False

def start(u):
    if running(u):
        return
    if UNITS.get(u, 0) is None:
        open(os.path.join(state, u + ".active"), "w").close()
        return
    if u not in UNITS:
        sys.stderr.write("Failed to start %%s.service: Unit %%s.service not found.\n" %% (u, u))
        sys.exit(5)
    log = open(os.path.join(root, "var", "log", u + ".log") if os.path.isdir(os.path.join(root, "var", "log"))
               else os.path.join(state, u + ".log"), "ab")
    p = subprocess.Popen(UNITS[u], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    open(pidfile(u), "w").write(str(p.pid))

def stop(u):
    if UNITS.get(u, 0) is None:
        try:
            os.unlink(os.path.join(state, u + ".active"))
        except FileNotFoundError:
            pass
        return
    try:
        pid = int(open(pidfile(u)).read())
    except (OSError, ValueError):
        return
    if running(u):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not running(u):
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.unlink(pidfile(u))

rc = 0
if cmd == "start":
    for u in units: start(u)
elif cmd == "stop":
    for u in units: stop(u)
elif cmd == "restart":
    for u in units: stop(u); start(u)
elif cmd == "is-active":
    ok = all(running(u) for u in units)
    if not quiet: print("active" if ok else "inactive")
    rc = 0 if ok else 3
elif cmd == "enable":
    for u in units: open(os.path.join(state, u + ".enabled"), "w").close()
elif cmd == "disable":
    for u in units:
        try: os.unlink(os.path.join(state, u + ".enabled"))
        except FileNotFoundError: pass
elif cmd == "is-enabled":
    ok = all(os.path.exists(os.path.join(state, u + ".enabled")) for u in units)
    if not quiet: print("enabled" if ok else "disabled")
    rc = 0 if ok else 1
sys.exit(rc)
'''


class Node:
    """A lab 'node' as a STANDIN_ROOT tree on this machine, driven through the real stand-in command lines."""

    def __init__(self, base, name, ip="127.0.0.1", **cfg):
        self.name, self.root = name, os.path.join(base, name)
        for d in ("etc/standin", "etc/cni/net.d", "var/log", "run", "etc/kubernetes"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        self.systemctl = os.path.join(self.root, "fake-systemctl")
        with open(self.systemctl, "w") as fh:
            fh.write(FAKE_SYSTEMCTL % {"python": sys.executable, "standin": STANDIN})
        os.chmod(self.systemctl, 0o755)
        self.config = {"node_ip": ip, "healthz_port": C.free_port(), "kubelet_port": C.free_port(),
                       "kubelet_address": "127.0.0.1", "status_interval": 0.3, "kubelet_wait_timeout": 20,
                       "discovery_timeout": 2, "tls_bootstrap_timeout": 20, "node_monitor_grace_period": 2,
                       "pod_eviction_orphan_quarantine": 1}
        self.config.update(cfg)
        self.write_config()

    def write_config(self):
        with open(os.path.join(self.root, "etc/standin/config"), "w") as fh:
            json.dump(self.config, fh)

    def env(self):
        env = dict(os.environ)
        env.update({"STANDIN_ROOT": self.root, "STANDIN_SYSTEMCTL": self.systemctl, "STANDIN_MINIMAL_PKI": "1",
                    "PYTHONDONTWRITEBYTECODE": "1"})
        env.pop("STANDIN_CONFIG", None)
        return env

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def run(self, tool, *args, timeout=60, input_text=None):
        exe = os.path.join(STANDIN, tool)
        return subprocess.run([sys.executable, exe] + list(args), capture_output=True, text=True, env=self.env(),
                              timeout=timeout, input=input_text, check=False)

    def systemd(self, *args):
        return subprocess.run([self.systemctl] + list(args), capture_output=True, text=True, env=self.env(),
                              timeout=30, check=False)

    def stop_all(self):
        self.systemd("stop", "kubelet", "standin-apiserver", "containerd")
