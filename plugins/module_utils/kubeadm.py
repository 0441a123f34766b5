# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the ``kubeadm_node`` module.

Everything here works on strings, dicts and lists: the module reads files and runs commands,
this file decides.  Contents:

* kubeconfig (``kubelet.conf``) parsing: the API server URL, the CA it trusts, the node identity;
* the kubeadm CA pin: ``sha256:<hex>`` of the CA's DER SubjectPublicKeyInfo;
* the API's Node object: the Ready condition and its age;
* ``summarize_local``: the local-state summary the planner and the module's result use;
* ``plan``: the decision table (one action and its reasons);
* argv builders for kubeadm, systemctl, crictl and umount;
* the forced-reset fallback's path plan (what may be removed, and what never is);
* parsers of kubeadm output (preflight errors, phase errors, join result, join command, token list).

No Ansible imports, so tests drive it directly with real captured output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import calendar
import hashlib
import json
import posixpath
import re
import time

try:  # optional: the CA hash is computed with cryptography when it is there, else with openssl
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import serialization as _serialization

    try:
        from cryptography.hazmat.backends import default_backend as _default_backend
    except ImportError:  # pragma: no cover - very new cryptography without backends
        _default_backend = None
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised on hosts without python3-cryptography
    HAS_CRYPTOGRAPHY = False

ACTIONS = ("none", "restart_kubelet", "join", "reset_and_join", "init", "reset")
ROLES = ("control_plane", "worker")
STATES = ("present", "reset")

DEFAULT_CRI_SOCKET = "unix:///run/containerd/containerd.sock"

# Paths, relative to the module's ``root`` option ("/" on a real node).
PATHS = {
    "kubelet_conf": "etc/kubernetes/kubelet.conf",
    "bootstrap_kubelet_conf": "etc/kubernetes/bootstrap-kubelet.conf",
    "ca_crt": "etc/kubernetes/pki/ca.crt",
    "kubelet_config": "var/lib/kubelet/config.yaml",
    "apiserver_manifest": "etc/kubernetes/manifests/kube-apiserver.yaml",
    "manifests_dir": "etc/kubernetes/manifests",
    "admin_conf": "etc/kubernetes/admin.conf",
    "etcd_member": "var/lib/etcd/member",
    "kubelet_dir": "var/lib/kubelet",
}

# What the forced reset may remove.  These are the files and directories kubeadm itself creates
# (kubeadm reset prints the same list: see tests/unit/fixtures/kubeadm/reset-*.txt) plus the CNI
# state kubeadm leaves behind.  /etc/kubernetes itself is NOT wiped, so a kubeadm config file or an
# audit policy kept there survives.  /var/lib/etcd only on a control-plane reset.
FALLBACK_CONTENTS = [
    "etc/kubernetes/manifests",
    "etc/kubernetes/pki",
    "etc/kubernetes/tmp",
    "var/lib/kubelet",
    "etc/cni/net.d",
    "var/lib/cni",
]
FALLBACK_CONTENTS_CONTROL_PLANE = ["var/lib/etcd"]
FALLBACK_FILES = [
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/super-admin.conf",
    "etc/kubernetes/kubelet.conf",
    "etc/kubernetes/bootstrap-kubelet.conf",
    "etc/kubernetes/controller-manager.conf",
    "etc/kubernetes/scheduler.conf",
]
# Never removed, whatever the plan says: data (nothing at or below these) ...
PROTECTED_DATA = [
    "var/lib/longhorn",
    "var/lib/containerd",
    "var/lib/docker",
    "nfs",
    "home",
    "root",
]
# ... and directories that hold far more than kubeadm state (never removed as a whole).
PROTECTED_ANCESTORS = ["", "etc", "etc/kubernetes", "var", "var/lib", "run", "opt"]

TOKEN_RE = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
CA_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

def join_root(root, rel):
    """Absolute path of ``rel`` (relative, see PATHS) under ``root``."""
    root = root or "/"
    rel = rel.lstrip("/")
    return posixpath.join(root, rel) if rel else root


def cri_socket_path(cri_socket):
    """unix:///run/containerd/containerd.sock -> /run/containerd/containerd.sock (bare paths pass)."""
    if cri_socket is None:
        return None
    if cri_socket.startswith("unix://"):
        return cri_socket[len("unix://"):]
    return cri_socket


def redact_tokens(text, secrets=None):
    """Replace literal secrets and anything shaped like a bootstrap token (``abcdef.0123456789abcdef``)."""
    if text is None:
        return None
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, "********")
    return TOKEN_RE.sub("******.****************", text)


# ---------------------------------------------------------------------------------------------
# kubeconfig
# ---------------------------------------------------------------------------------------------

def _kubeconfig_structured(data):
    """Pick server/CA/user of the current context from a decoded kubeconfig mapping."""
    if not isinstance(data, dict):
        return None
    clusters = {}
    for item in data.get("clusters") or []:
        if isinstance(item, dict):
            clusters[item.get("name")] = item.get("cluster") or {}
    contexts = {}
    for item in data.get("contexts") or []:
        if isinstance(item, dict):
            contexts[item.get("name")] = item.get("context") or {}
    context = contexts.get(data.get("current-context"))
    if context is None and contexts:
        context = contexts[sorted(contexts, key=str)[0]]
    context = context or {}
    cluster = clusters.get(context.get("cluster"))
    if cluster is None and clusters:
        cluster = list(clusters.values())[0]
    cluster = cluster or {}
    users = {}
    for item in data.get("users") or []:
        if isinstance(item, dict):
            users[item.get("name")] = item.get("user") or {}
    user = users.get(context.get("user")) or {}
    return {
        "server": cluster.get("server"),
        "ca_data": cluster.get("certificate-authority-data"),
        "ca_file": cluster.get("certificate-authority"),
        "user": context.get("user"),
        "client_cert_data": user.get("client-certificate-data"),
        "client_cert_file": user.get("client-certificate"),
        "clusters": len(clusters),
    }


def _kubeconfig_regex(text):
    """Line-based fallback for kubeconfigs as kubeadm/kubelet write them (no YAML library needed)."""

    def first(pattern):
        m = re.search(pattern, text, re.MULTILINE)
        return m.group(1).strip().strip("\"'") if m else None

    return {
        "server": first(r"^\s*server:[ \t]*(\S+)[ \t]*$"),
        "ca_data": first(r"^\s*certificate-authority-data:[ \t]*(\S+)[ \t]*$"),
        "ca_file": first(r"^\s*certificate-authority:[ \t]*(\S+)[ \t]*$"),
        "user": first(r"^\s*user:[ \t]*(\S+)[ \t]*$"),
        "client_cert_data": first(r"^\s*client-certificate-data:[ \t]*(\S+)[ \t]*$"),
        "client_cert_file": first(r"^\s*client-certificate:[ \t]*(\S+)[ \t]*$"),
        "clusters": len(re.findall(r"^\s*server:", text, re.MULTILINE)),
    }


def parse_kubeconfig(text, use_yaml=True):
    """Return ``{server, ca_pem, ca_file, user, client_cert_pem, client_cert_file, node_name, clusters, error}``.

    ``ca_pem`` is the decoded ``certificate-authority-data`` (PEM text) or None; ``ca_file`` the
    ``certificate-authority`` path; likewise ``client_cert_pem``/``client_cert_file`` for the user's
    client certificate (whose subject CN ``system:node:<name>`` is the node's identity on a worker,
    where kubelet.conf's user is ``default-auth``); ``node_name`` comes from a ``system:node:<name>``
    user name (the control-plane layout kubeadm init writes).
    JSON and YAML are read structurally (PyYAML when importable); otherwise a line scanner reads the
    layout kubeadm writes.
    """
    result = {"server": None, "ca_pem": None, "ca_file": None, "user": None, "client_cert_pem": None,
              "client_cert_file": None, "node_name": None, "clusters": 0, "error": None}
    if text is None:
        return result
    parsed = None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            parsed = _kubeconfig_structured(json.loads(text))
        except ValueError:
            parsed = None
    if parsed is None and use_yaml:
        try:
            import yaml  # noqa: F401 - optional on targets

            parsed = _kubeconfig_structured(yaml.safe_load(text))
        except ImportError:
            parsed = None
        except Exception:  # yaml.YAMLError and friends: fall back to the line scanner
            parsed = None
    if parsed is None:
        parsed = _kubeconfig_regex(text)
    result.update(parsed)
    for data_key, pem_key, label in (("ca_data", "ca_pem", "certificate-authority-data"),
                                     ("client_cert_data", "client_cert_pem", "client-certificate-data")):
        if result.get(data_key):
            try:
                result[pem_key] = base64.b64decode(result[data_key]).decode("ascii", "replace")
            except (TypeError, ValueError, binascii.Error):
                result["error"] = "%s is not valid base64" % label
        result.pop(data_key, None)
    user = result.get("user") or ""
    if isinstance(user, str) and user.startswith("system:node:"):
        result["node_name"] = user[len("system:node:"):]
    return result


# ---------------------------------------------------------------------------------------------
# CA pin (kubeadm --discovery-token-ca-cert-hash)
# ---------------------------------------------------------------------------------------------

def _pem_blocks(text, label):
    """DER bytes of every ``-----BEGIN <label>-----`` block in text."""
    blocks = []
    if not text:
        return blocks
    pattern = re.compile(r"-----BEGIN %s-----(.*?)-----END %s-----" % (label, label), re.DOTALL)
    for body in pattern.findall(text):
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (TypeError, ValueError, binascii.Error):
            continue
        if der:
            blocks.append(der)
    return blocks


def spki_hash_from_der(spki_der):
    return "sha256:" + hashlib.sha256(spki_der).hexdigest()


def spki_hash_from_pubkey_pem(text):
    """kubeadm's CA pin from ``openssl x509 -noout -pubkey`` output (a PUBLIC KEY PEM = DER SPKI)."""
    blocks = _pem_blocks(text, "PUBLIC KEY")
    return spki_hash_from_der(blocks[0]) if blocks else None


def spki_hash_from_cert_pem(text):
    """kubeadm's CA pin of the first certificate in PEM text, with cryptography; None when unavailable
    or unparseable (the module then asks openssl)."""
    cert = _load_cert(text)
    if cert is None:
        return None
    try:
        spki = cert.public_key().public_bytes(
            _serialization.Encoding.DER, _serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # any parse error: unknown, not a mismatch
        return None
    return spki_hash_from_der(spki)


def _load_cert(text):
    blocks = _pem_blocks(text, "CERTIFICATE")
    if not HAS_CRYPTOGRAPHY or not blocks:
        return None
    try:
        if _default_backend is not None:
            return _x509.load_der_x509_certificate(blocks[0], _default_backend())
        return _x509.load_der_x509_certificate(blocks[0])  # pragma: no cover
    except Exception:
        return None


def node_name_from_cert_pem(text):
    """``<name>`` of a kubelet client certificate whose subject CN is ``system:node:<name>`` (cryptography);
    None when unknown."""
    cert = _load_cert(text)
    if cert is None:
        return None
    try:
        from cryptography.x509.oid import NameOID

        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return None
    for attr in names:
        if attr.value.startswith("system:node:"):
            return attr.value[len("system:node:"):]
    return None


def node_name_from_openssl_subject(text):
    """The same from ``openssl x509 -noout -subject`` ('subject=O = system:nodes, CN = system:node:x')."""
    m = re.search(r"CN\s*=\s*system:node:([^,/\s]+)", text or "")
    return m.group(1) if m else None


def normalize_ca_hash(value):
    """'SHA256:ABC…' -> 'sha256:abc…'; None for empty; raises ValueError when malformed."""
    if value is None or value == "":
        return None
    value = value.strip().lower()
    if not value.startswith("sha256:"):
        value = "sha256:" + value
    if not CA_HASH_RE.match(value):
        raise ValueError("ca_cert_hash must look like sha256:<64 hex digits>")
    return value


# ---------------------------------------------------------------------------------------------
# API endpoints
# ---------------------------------------------------------------------------------------------

def split_endpoint(value):
    """'https://10.10.10.1:6443/' or '10.10.10.1:6443' -> ('10.10.10.1', 6443); port None if absent."""
    if not value:
        return None, None
    value = value.strip()
    scheme = None
    if "://" in value:
        scheme, value = value.split("://", 1)
    value = value.split("/", 1)[0]
    host, port = value, None
    if value.startswith("["):
        end = value.find("]")
        host = value[1:end]
        rest = value[end + 1:]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, p = value.split(":")
        if p.isdigit():
            port = int(p)
    if port is None and scheme == "https":
        port = 443
    return host.lower(), port


def endpoints_match(a, b):
    ha, pa = split_endpoint(a)
    hb, pb = split_endpoint(b)
    if ha is None or hb is None:
        return True  # nothing to compare
    return ha == hb and (pa is None or pb is None or pa == pb)


# ---------------------------------------------------------------------------------------------
# The API's view: Node object
# ---------------------------------------------------------------------------------------------

def normalize_api_node(value):
    """The Node as the API sees it, or None when it does not exist.

    Accepts the Node dict itself, or a kubernetes.core.k8s_info result (``resources`` list), or
    None/{}/[] for "no such Node".
    """
    if not value:
        return None
    if isinstance(value, list):
        return normalize_api_node(value[0]) if value else None
    if isinstance(value, dict) and "resources" in value and "kind" not in value:
        return normalize_api_node(value.get("resources") or None)
    if isinstance(value, dict):
        return value
    return None


def parse_k8s_time(value):
    """RFC 3339 time as the API writes it ('2025-02-07T07:33:22Z', with optional fraction/offset) -> epoch."""
    if not value or not isinstance(value, str):
        return None
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$", value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    tz = m.group(8)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def node_ready(node):
    """``{status, since, reason, message}`` of the Node's Ready condition; status None when absent."""
    result = {"status": None, "since": None, "reason": None, "message": None}
    if not node:
        return result
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            result["status"] = cond.get("status")
            result["since"] = parse_k8s_time(cond.get("lastTransitionTime"))
            result["reason"] = cond.get("reason")
            result["message"] = cond.get("message")
    return result


def node_name_of(node):
    return ((node or {}).get("metadata") or {}).get("name")


# ---------------------------------------------------------------------------------------------
# systemd and /proc helpers (pure parsers)
# ---------------------------------------------------------------------------------------------

def parse_systemctl_show(text):
    """``systemctl show -p A -p B`` output (KEY=value lines) -> dict."""
    props = {}
    for line in (text or "").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def active_seconds(active_enter_monotonic_usec, uptime_text):
    """Seconds a unit has been active: /proc/uptime minus ActiveEnterTimestampMonotonic (usec)."""
    try:
        usec = int(active_enter_monotonic_usec)
        uptime = float((uptime_text or "").split()[0])
    except (TypeError, ValueError, IndexError):
        return None
    if usec <= 0:
        return None
    return max(0.0, uptime - usec / 1e6)


def mounts_under(mountpoints, prefix):
    """Mount points strictly below ``prefix``, deepest first (the order to unmount them)."""
    prefix = prefix.rstrip("/")
    found = [m for m in mountpoints if m.startswith(prefix + "/")]
    return sorted(set(found), key=lambda p: (p.count("/"), len(p), p), reverse=True)


INTERPRETERS = re.compile(r"^(python[0-9.]*|sh|bash|dash)$")


def select_processes(entries, names, exclude=()):
    """PIDs of processes that ARE one of ``names``, by exact name, never by a pattern over the command line.

    ``entries``: ``(pid, comm)`` or ``(pid, comm, argv)``.  A process matches when its comm is the name, when the
    basename of argv[0] is the name, or when argv[0] is an interpreter (python, sh, bash) and argv[1]'s basename is
    the name (a script started through ``#!/usr/bin/env``).  ``timeout 120 kubeadm reset`` itself never matches.
    """
    wanted = set(names)
    pids = []
    for entry in entries:
        pid, comm = entry[0], entry[1]
        argv = list(entry[2]) if len(entry) > 2 and entry[2] else []
        base = [posixpath.basename(a) for a in argv[:2]]
        hit = comm in wanted or (base and base[0] in wanted) or (
            len(base) == 2 and INTERPRETERS.match(base[0]) and base[1] in wanted)
        if hit and pid not in exclude:
            pids.append(pid)
    return sorted(pids)


# ---------------------------------------------------------------------------------------------
# Local state summary
# ---------------------------------------------------------------------------------------------

LOCAL_KEYS = (
    "kubelet_conf", "kubelet_conf_server", "kubelet_conf_ca_hash", "kubelet_conf_node",
    "bootstrap_kubelet_conf", "ca_crt", "ca_crt_hash", "kubelet_config", "apiserver_manifest",
    "manifests_nonempty", "admin_conf", "etcd_data", "kubelet_active", "kubelet_enabled",
    "kubelet_active_seconds", "cri_socket", "cri_socket_present",
)


def summarize_local(facts):
    """Normalise what the module observed into the flat summary the planner and the result use.

    ``facts`` keys (missing ones default to "absent"/unknown): the booleans of PATHS
    (``kubelet_conf``, ``bootstrap_kubelet_conf``, ``ca_crt``, ``kubelet_config``,
    ``apiserver_manifest``, ``manifests_nonempty``, ``admin_conf``, ``etcd_data``),
    ``kubelet_conf_text`` (parsed here), ``kubelet_conf_ca_hash``, ``ca_crt_hash`` and
    ``kubelet_conf_node`` (the client certificate's node name; computed by the module), ``kubelet_active``/``kubelet_enabled`` (systemctl words),
    ``kubelet_active_seconds``, ``cri_socket`` and ``cri_socket_present``.
    """
    local = dict((k, None) for k in LOCAL_KEYS)
    for key in ("kubelet_conf", "bootstrap_kubelet_conf", "ca_crt", "kubelet_config", "apiserver_manifest",
                "manifests_nonempty", "admin_conf", "etcd_data", "cri_socket_present"):
        local[key] = bool(facts.get(key))
    for key in ("kubelet_conf_ca_hash", "ca_crt_hash", "kubelet_active_seconds", "cri_socket"):
        local[key] = facts.get(key)
    local["kubelet_active"] = facts.get("kubelet_active") or "unknown"
    local["kubelet_enabled"] = facts.get("kubelet_enabled") or "unknown"
    if local["kubelet_conf"]:
        kc = parse_kubeconfig(facts.get("kubelet_conf_text")) if facts.get("kubelet_conf_text") is not None else {}
        local["kubelet_conf_server"] = facts.get("kubelet_conf_server") or kc.get("server")
        # the client certificate's CN (worker layout) wins over a system:node:<name> user name (init layout)
        local["kubelet_conf_node"] = facts.get("kubelet_conf_node") or kc.get("node_name")
    return local


def kubelet_running(local):
    return local.get("kubelet_active") == "active"


def kubelet_enabled(local):
    # "static"/"indirect"/"generated"/"alias" units cannot be enabled; "enabled-runtime" is not persistent.
    return local.get("kubelet_enabled") in ("enabled", "static", "alias", "generated", "indirect", "linked")


def leftovers(local, role="worker"):
    """Names of kubeadm/kubelet state present on the node (what kubeadm join's preflight trips over)."""
    names = []
    for key in ("kubelet_conf", "bootstrap_kubelet_conf", "ca_crt", "kubelet_config", "manifests_nonempty",
                "admin_conf"):
        if local.get(key):
            names.append(key)
    if role == "control_plane" and local.get("etcd_data"):
        names.append("etcd_data")
    return names


# ---------------------------------------------------------------------------------------------
# Planner (decision table)
# ---------------------------------------------------------------------------------------------

JOIN_OPTIONS = ("api_endpoint", "token", "ca_cert_hash")


def _result(action, reasons, missing=None, error=None, warnings=None):
    return {"action": action, "reasons": list(reasons), "missing": list(missing or []), "error": error,
            "warnings": list(warnings or []), "delete_api_node": False, "restart_running": False}


def _kubelet_service_reasons(local):
    reasons = []
    if not kubelet_running(local):
        reasons.append("kubelet is %s" % local.get("kubelet_active"))
    if not kubelet_enabled(local):
        reasons.append("kubelet is not enabled at boot (%s)" % local.get("kubelet_enabled"))
    return reasons


def _join_requirements(state, plan):
    """Add ``missing`` (join options not given), ``delete_api_node`` and the cluster_exists=false refusal to a
    join plan. A Node object that the API still shows is deleted before the join: kubeadm refuses to join over a
    Ready Node of the same name, and a re-join must not inherit a stale object's state."""
    plan["missing"] = [opt for opt in JOIN_OPTIONS if not state.get(opt)]
    plan["delete_api_node"] = normalize_api_node(state.get("api_node")) is not None
    if state.get("cluster_exists") is False:
        plan["error"] = ("planned %s, but cluster_exists=false says the API does not answer: refusing to reset "
                         "or join a node against an API that is down" % plan["action"])
    return plan


def missing_message(plan):
    """The failure message for a plan whose required options are missing (None when nothing is missing)."""
    if not plan.get("missing"):
        return None
    return "planned %s (%s), but %s missing: %s" % (
        plan["action"], "; ".join(plan["reasons"]),
        "this option is" if len(plan["missing"]) == 1 else "these options are", ", ".join(plan["missing"]))


def _plan_worker(state):
    local = state["local"]
    node = normalize_api_node(state.get("api_node"))
    name = state.get("node_name")
    ready = node_ready(node)

    if not local["kubelet_conf"]:
        reasons = ["no /etc/kubernetes/kubelet.conf on this node"]
        if node is None:
            reasons.append("Node %s does not exist in the API" % name)
        elif ready["status"] == "True":
            # kubeadm join refuses a Ready Node of the same name: the plan deletes it first (delete_api_node).
            reasons.append("Node %s is Ready in the API but nothing on this node backs it (reinstalled or wiped): "
                           "the stale Node is deleted before the join" % name)
        else:
            reasons.append("Node %s exists in the API but is not Ready (%s); kubeadm join takes it over"
                           % (name, ready["status"] or "no Ready condition"))
        left = leftovers(local)
        if kubelet_running(local):
            left.append("kubelet running (port 10250 in use)")
        if left:
            reasons.append("leftover state would fail kubeadm join's preflight: %s" % ", ".join(left))
            return _join_requirements(state, _result("reset_and_join", reasons))
        return _join_requirements(state, _result("join", reasons))

    # kubelet.conf present: is the membership it describes the one we want?
    broken = []
    if not local["kubelet_config"]:
        broken.append("kubelet.conf present but /var/lib/kubelet/config.yaml missing (half-finished join)")
    server = local.get("kubelet_conf_server")
    if state.get("api_endpoint") and server and not endpoints_match(server, state["api_endpoint"]):
        broken.append("kubelet.conf points at API server %s, not %s" % (server, state["api_endpoint"]))
    want_ca = state.get("ca_cert_hash")
    for key, label in (("kubelet_conf_ca_hash", "kubelet.conf"), ("ca_crt_hash", "/etc/kubernetes/pki/ca.crt")):
        have = local.get(key)
        if want_ca and have and have != want_ca:
            broken.append("%s trusts a different CA (%s) than the cluster's (%s)" % (label, have, want_ca))
    if (not want_ca and local.get("kubelet_conf_ca_hash") and local.get("ca_crt_hash")
            and local["kubelet_conf_ca_hash"] != local["ca_crt_hash"]):
        broken.append("kubelet.conf and /etc/kubernetes/pki/ca.crt trust different CAs")
    if name and local.get("kubelet_conf_node") and local["kubelet_conf_node"] != name:
        broken.append("kubelet.conf identifies this node as %s, not %s" % (local["kubelet_conf_node"], name))
    if node is None:
        broken.append("Node %s does not exist in the API although kubelet.conf is present "
                      "(deleted from the cluster; the kubelet will not re-register by itself)" % name)
    if broken:
        return _join_requirements(state, _result("reset_and_join", broken))

    service = _kubelet_service_reasons(local)
    if service:
        return _result("restart_kubelet", ["kubelet.conf present and Node %s exists" % name] + service)

    status = ready["status"]
    if status == "True":
        return _result("none", ["Node %s is Ready; kubelet.conf matches; kubelet active and enabled" % name])
    return _plan_not_ready(state, name, ready, local)


KLOG_ERROR = re.compile(r"^E\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+\S+:\d+\]\s*(.*)$")


# Errors a healthy kubelet logs too, which would crowd out the one that explains a Node not Ready: a worker has no
# static pod manifests directory, and the kubelet says so every second.
KLOG_NOISE = ("\"Unable to read config path\" err=\"path does not exist, ignoring\"",)


def parse_kubelet_errors(text, limit=3, width=240):
    """The last ``limit`` distinct error messages of klog lines (``E1130 00:08:56.1 123 file.go:12] msg``) in a
    journal excerpt, newest last, each cut to ``width`` characters. Repeats of one message count once; the
    messages of KLOG_NOISE are left out."""
    found = []
    for line in (text or "").splitlines():
        match = KLOG_ERROR.match(line.strip())
        if not match:
            continue
        message = match.group(1).strip()
        if any(noise in message for noise in KLOG_NOISE):
            continue
        if len(message) > width:
            message = message[:width - 3] + "..."
        if message in found:
            found.remove(message)
        found.append(message)
    return found[-limit:]


def parse_runtime_conditions(text):
    """``crictl info -o json`` -> [{type, status (bool), reason, message}] of the runtime's own conditions
    (RuntimeReady, NetworkReady); [] when the output cannot be read."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return []
    conditions = ((data.get("status") or {}) if isinstance(data, dict) else {}).get("conditions") or []
    return [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason") or "",
             "message": c.get("message") or ""} for c in conditions if isinstance(c, dict)]


def endpoint_host_port(endpoint, default_port=6443):
    """``10.10.10.1:6443`` / ``https://[fd00::1]:6443/`` -> (host, port)."""
    text = re.sub(r"^[a-z]+://", "", str(endpoint or "")).rstrip("/")
    match = re.match(r"^\[([^\]]+)\](?::(\d+))?$", text) or re.match(r"^([^:]+)(?::(\d+))?$", text)
    if not match:
        return None, None
    return match.group(1), int(match.group(2) or default_port)


def kubelet_errors_argv(journalctl, seconds=180, lines=1000):
    """The newest ``lines`` journal lines of the kubelet from the last ``seconds``, newest first (-r: with --since,
    journalctl's -n alone would keep the oldest lines of the window; reverse the text before parse_kubelet_errors)."""
    return [journalctl, "-u", "kubelet", "--since", "-%ds" % seconds, "-r", "-n", str(lines), "-o", "cat", "--no-pager"]


def crictl_info_argv(crictl, cri_socket):
    return [crictl, "--runtime-endpoint", cri_socket, "info", "-o", "json"]


def needs_diagnosis(state):
    """Whether the module reads the node's diagnosis: a worker with a kubelet.conf whose Node exists, not Ready."""
    node = normalize_api_node(state.get("api_node"))
    return (state.get("role") == "worker" and state.get("state") == "present" and node is not None
            and state["local"].get("kubelet_conf") and node_ready(node)["status"] != "True")


def describe_ready(ready):
    """``Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)`` from ``node_ready``."""
    text = "Ready=%s" % (ready.get("status") or "absent")
    detail = ": ".join(str(part) for part in (ready.get("reason"), ready.get("message")) if part)
    return text + (" (%s)" % detail if detail else "")


def describe_diagnosis(diagnosis, api_endpoint):
    """What the node itself says about a Node that is not Ready: the API's reachability from the node, the
    runtime's own conditions, the kubelet's recent errors. Facts the module did not read are left out."""
    diagnosis = diagnosis or {}
    lines = []
    if diagnosis.get("api_error"):
        lines.append("this node cannot reach the API at %s: %s" % (api_endpoint, diagnosis["api_error"]))
    elif diagnosis.get("api_reachable"):
        lines.append("this node reaches the API at %s" % api_endpoint)
    for cond in diagnosis.get("runtime_conditions") or []:
        if cond.get("status") is False:
            detail = ": ".join(part for part in (cond.get("reason"), cond.get("message")) if part)
            lines.append("container runtime reports %s=false%s" % (cond.get("type"), " (%s)" % detail if detail else ""))
    errors = diagnosis.get("kubelet_errors") or []
    if errors:
        lines.append("the kubelet's recent errors: " + " | ".join(errors))
    return lines


def _plan_not_ready(state, name, ready, local):
    """Kubelet active and enabled, membership files consistent, the Node exists but is not Ready.

    Escalates in a bounded order: tolerate within the grace; then restart the kubelet; after a restart that did not
    help (``kubelet_restarted``), re-join when the kubelet's status does not reach the API (Unknown), and stop with
    the diagnosis when the kubelet itself reports NotReady (a re-join cannot fix what it reports) or when this node
    cannot reach the API at all (neither step can fix that).
    """
    status = ready["status"]
    condition = describe_ready(ready)
    facts = describe_diagnosis(local.get("diagnosis"), state.get("api_endpoint"))
    restarted = bool(state.get("kubelet_restarted"))
    if not restarted:
        now = state.get("now")
        grace = state.get("kubelet_ready_grace") or 0
        durations = []
        if now is not None and ready["since"] is not None:
            durations.append(max(0, now - ready["since"]))
        if local.get("kubelet_active_seconds") is not None:
            durations.append(local["kubelet_active_seconds"])
        waited = min(durations) if durations else None
        if waited is not None and waited < grace:
            return _result("none", [
                "Node %s is %s although the kubelet is active; tolerated for %ds more (kubelet_ready_grace=%d)"
                % (name, condition, int(grace - waited), grace)
            ])
        waited_text = "an unknown time" if waited is None else str(int(waited)) + "s"
        found = ["Node %s has been %s for %s while the kubelet is active (kubelet_ready_grace=%s)"
                 % (name, condition, waited_text, grace)] + facts
    else:
        found = ["Node %s is still %s after the kubelet was restarted" % (name, condition)] + facts
    if (local.get("diagnosis") or {}).get("api_error"):
        return _result("none", found, error=(
            "; ".join(found) + ". Neither a kubelet restart nor a re-join can fix that: check the fabric address and "
            "route to the API endpoint, and any firewall between this node and the control plane"))
    if not restarted:
        plan = _result("restart_kubelet", found + [
            "first step: restart the kubelet; if the Node is still not Ready after that, the next step is %s"
            % ("a re-join" if status != "False" else "to stop with this diagnosis (a re-join cannot fix what the "
                                                     "kubelet itself reports)")])
        plan["restart_running"] = True
        return plan
    if status == "False":
        return _result("none", found, error=(
            "; ".join(found) + ". The kubelet reaches the API and reports NotReady itself, so a re-join cannot fix "
            "it: the cause is on the node (most often the container runtime or the CNI)"))
    return _join_requirements(state, _result("reset_and_join", found + [
        "the kubelet's status still does not reach the API: its credentials or state are broken, so it re-joins"]))


def _plan_control_plane(state):
    local = state["local"]
    cp_files = [k for k in ("apiserver_manifest", "admin_conf") if local.get(k)]
    if cp_files:
        reasons = ["control-plane files present (%s)" % ", ".join(cp_files)]
        service = _kubelet_service_reasons(local)
        if service:
            return _result("restart_kubelet", reasons + service)
        if state.get("cluster_exists") is False:
            reasons.append("the API does not answer yet; its static pods are the kubelet's job")
        return _result("none", reasons + ["kubelet active and enabled"])
    exists = state.get("cluster_exists")
    if exists:
        return _result("none", ["no control-plane files on this node", "the API answers"], error=(
            "the API answers (cluster_exists=true) but this node has no kube-apiserver manifest or admin.conf: "
            "refusing to init over an existing cluster (joining further control-plane nodes is not supported)"))
    if exists is None:
        return _result("none", ["no control-plane files on this node"], error=(
            "cluster_exists is required for role=control_plane when no control-plane files exist: init is only "
            "planned when the caller confirms that no cluster answers"))
    left = leftovers(local, "control_plane")
    if left:
        return _result("none", ["no cluster answers and no control-plane files"], error=(
            "partial kubeadm state on this control-plane node (%s) but no kube-apiserver manifest/admin.conf: "
            "refusing to init over it; inspect it or run with state=reset first" % ", ".join(left)))
    plan = _result("init", ["no cluster exists (cluster_exists=false)", "no kubeadm state on this node"])
    if not state.get("init_config"):
        plan["missing"] = ["init_config"]
    return plan


def plan(state):
    """Decide one action for a node.  Pure: ``state`` holds everything.

    Keys: ``role``, ``state``, ``local`` (``summarize_local``), ``node_name``, ``api_node``
    (Node dict, k8s_info result, or None: the API's view *at call time*, i.e. after the caller deleted
    any stale Node), ``cluster_exists`` (True/False/None), ``api_endpoint``, ``token`` (only its
    truthiness is used), ``ca_cert_hash`` (normalised), ``init_config``, ``kubelet_ready_grace``,
    ``now`` (epoch seconds).

    Returns ``{action, reasons, missing, error, warnings, delete_api_node}``: ``error`` set means "refused, do
    not act"; ``missing`` lists required options that were not given (see ``missing_message``);
    ``delete_api_node`` says that the caller must delete the Node object before the join (the module never
    talks to the API) and then call again with ``api_node`` as the API shows it afterwards (null).
    """
    local = state["local"]
    if state.get("state") == "reset":
        left = leftovers(local, state.get("role"))
        if local.get("apiserver_manifest") and "apiserver_manifest" not in left:
            left.append("apiserver_manifest")
        if not left:
            return _result("none", ["state=reset and no kubeadm/kubelet state is left on this node"])
        return _result("reset", ["state=reset requested", "kubeadm state present: %s" % ", ".join(left)])
    if state.get("role") == "control_plane":
        return _plan_control_plane(state)
    return _plan_worker(state)


def copy_is_current(source, copy, copy_mode, copy_uid, want_uid, want_mode=0o600):
    """Whether a copy of a file (a kubeconfig handed to an operator) is present, identical, private and owned
    by the right user. ``source``/``copy`` are the contents (None when absent); modes are st_mode values."""
    if source is None or copy is None or source != copy:
        return False
    if copy_mode is None or (copy_mode & 0o777) != want_mode:
        return False
    return want_uid is None or copy_uid == want_uid


def predicted_local(local, action):
    """Summary after ``action`` (for diff mode): the fields the action changes."""
    after = dict(local)
    if action in ("join", "reset_and_join", "init"):
        after.update(kubelet_conf=True, kubelet_config=True, ca_crt=True, kubelet_active="active",
                     kubelet_enabled="enabled")
        if action == "init":
            after.update(apiserver_manifest=True, admin_conf=True, manifests_nonempty=True, etcd_data=True)
    elif action == "restart_kubelet":
        after.update(kubelet_active="active", kubelet_enabled="enabled")
    elif action == "reset":
        for key in ("kubelet_conf", "bootstrap_kubelet_conf", "ca_crt", "kubelet_config", "apiserver_manifest",
                    "manifests_nonempty", "admin_conf", "etcd_data"):
            after[key] = False
        for key in ("kubelet_conf_server", "kubelet_conf_ca_hash", "kubelet_conf_node", "ca_crt_hash"):
            after[key] = None
        after["kubelet_active"] = "inactive"
    return after


# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

def reset_argv(kubeadm, cri_socket):
    return [kubeadm, "reset", "-f", "--cri-socket", cri_socket]


def join_argv(kubeadm, api_endpoint, token, ca_cert_hash, node_name, cri_socket):
    return [kubeadm, "join", api_endpoint, "--token", token, "--discovery-token-ca-cert-hash", ca_cert_hash,
            "--node-name", node_name, "--cri-socket", cri_socket]


def init_argv(kubeadm, config):
    return [kubeadm, "init", "--config", config, "--skip-token-print"]


def systemctl_argv(systemctl, verb, unit, now=False):
    argv = [systemctl, verb]
    if now:
        argv.append("--now")
    return argv + [unit]


def systemctl_kill_argv(systemctl, unit, signal_name="SIGKILL"):
    """Signal every process of ``unit``: a kubelet that ignores (or cannot act on) a stop is killed outright."""
    return [systemctl, "kill", "--signal=" + signal_name, unit]


def crictl_remove_all_pods_argv(crictl, cri_socket):
    return [crictl, "--runtime-endpoint", cri_socket, "rmp", "--all", "--force"]


def umount_lazy_argv(umount, path):
    return [umount, "-l", path]


def openssl_pubkey_argv(openssl):
    """Reads the certificate on stdin; prints its public key (PEM SubjectPublicKeyInfo)."""
    return [openssl, "x509", "-noout", "-pubkey"]


def openssl_subject_argv(openssl):
    return [openssl, "x509", "-noout", "-subject"]


# ---------------------------------------------------------------------------------------------
# Forced reset: what may be removed
# ---------------------------------------------------------------------------------------------

def fallback_paths(root, role):
    """``{contents: [dirs whose contents go], files: [files that go]}`` for the forced reset."""
    contents = list(FALLBACK_CONTENTS)
    if role == "control_plane":
        contents += FALLBACK_CONTENTS_CONTROL_PLANE
    paths = {
        "contents": [join_root(root, p) for p in contents],
        "files": [join_root(root, p) for p in FALLBACK_FILES],
    }
    check_fallback_paths(root, paths["contents"] + paths["files"])
    return paths


def check_fallback_paths(root, paths):
    """Raise ValueError for a path that is, holds or lies inside protected data, or is a protected ancestor."""
    base = posixpath.normpath(root or "/")
    for path in paths:
        norm = posixpath.normpath(path)
        if base != "/" and not (norm == base or norm.startswith(base + "/")):
            raise ValueError("refusing to remove %s: outside root %s" % (path, base))
        rel = norm[len(base):].strip("/") if base != "/" else norm.strip("/")
        if rel in PROTECTED_ANCESTORS:
            raise ValueError("refusing to remove protected directory %s" % path)
        for data in PROTECTED_DATA:
            if rel == data or rel.startswith(data + "/") or data.startswith(rel + "/"):
                raise ValueError("refusing to remove %s: protected data %s" % (path, data))
    return True


# ---------------------------------------------------------------------------------------------
# kubeadm output parsers
# ---------------------------------------------------------------------------------------------

_CHECK_RE = re.compile(r"^\s*\[(ERROR|WARNING) ([^\]]+)\]:\s*(.*)$")
_PHASE_RE = re.compile(r"error execution phase ([^:]+):\s*(.*)$")
_NODE_EXISTS_RE = re.compile(r'a Node with name "([^"]+)" and status "Ready" already exists')


def parse_kubeadm_output(text):
    """Preflight errors/warnings, the failed phase, and whether the node joined.

    Returns ``{errors: [{check, message}], warnings: [...], phase: str|None, phase_error: str|None,
    joined: bool, node_exists_ready: name|None, hints: [...]}``.
    """
    result = {"errors": [], "warnings": [], "phase": None, "phase_error": None, "joined": False,
              "node_exists_ready": None, "hints": []}
    for line in (text or "").splitlines():
        m = _CHECK_RE.match(line)
        if m:
            kind = "errors" if m.group(1) == "ERROR" else "warnings"
            result[kind].append({"check": m.group(2), "message": m.group(3).strip()})
            continue
        m = _PHASE_RE.search(line)
        if m and result["phase"] is None:
            result["phase"] = m.group(1).strip()
            result["phase_error"] = m.group(2).strip()
        m = _NODE_EXISTS_RE.search(line)
        if m:
            result["node_exists_ready"] = m.group(1)
        if line.strip() == "This node has joined the cluster:":
            result["joined"] = True
    checks = [e["check"] for e in result["errors"]]
    if any(c.startswith("FileAvailable--etc-kubernetes") for c in checks):
        result["hints"].append("leftover kubeadm files: the node needs a reset before it can join")
    if "Port-10250" in checks:
        result["hints"].append("port 10250 in use: a kubelet is still running")
    if result["node_exists_ready"]:
        result["hints"].append("delete the Ready Node %s from the API before re-joining" % result["node_exists_ready"])
    return result


def describe_failure(text):
    """One line summing up a kubeadm failure (for error messages)."""
    parsed = parse_kubeadm_output(text)
    parts = []
    if parsed["phase"]:
        parts.append("phase %s: %s" % (parsed["phase"], parsed["phase_error"]))
    for err in parsed["errors"]:
        parts.append("[%s] %s" % (err["check"], err["message"]))
    parts.extend(parsed["hints"])
    return "; ".join(parts)


def parse_join_command(text):
    """``kubeadm token create --print-join-command`` -> {api_endpoint, token, ca_cert_hash, extra}."""
    for line in (text or "").splitlines():
        words = line.split()
        if "join" not in words:
            continue
        i = words.index("join")
        if i == 0 or not words[i - 1].endswith("kubeadm") or i + 1 >= len(words):
            continue
        result = {"api_endpoint": words[i + 1], "token": None, "ca_cert_hash": None, "extra": []}
        rest = words[i + 2:]
        j = 0
        while j < len(rest):
            word = rest[j]
            if word == "--token" and j + 1 < len(rest):
                result["token"] = rest[j + 1]
                j += 2
            elif word == "--discovery-token-ca-cert-hash" and j + 1 < len(rest):
                result["ca_cert_hash"] = rest[j + 1]
                j += 2
            else:
                result["extra"].append(word)
                j += 1
        return result
    return None


def parse_token_list(text):
    """``kubeadm token list`` table -> [{token, ttl, expires, usages, description, extra_groups}]."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("TOKEN"):
        return []
    header = lines[0]
    names = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]
    starts = [header.find(n) for n in names]
    if any(s < 0 for s in starts):
        return []
    keys = ["token", "ttl", "expires", "usages", "description", "extra_groups"]
    rows = []
    for line in lines[1:]:
        row = {}
        for idx, key in enumerate(keys):
            end = starts[idx + 1] if idx + 1 < len(starts) else None
            row[key] = line[starts[idx]:end].strip() if end else line[starts[idx]:].strip()
        row["usages"] = row["usages"].split(",") if row["usages"] else []
        rows.append(row)
    return rows


def wall_clock():
    """Wall clock for the planner's ``now`` (kept here so the module stays thin)."""
    return time.time()


STATIC_POD_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def static_pod_states(crictl_ps_json, names=STATIC_POD_NAMES):
    """``crictl ps -a -o json`` -> {name: state of its newest container} for the control-plane static pods.

    A name with no container maps to ``None``; unparsable output gives ``{}`` (unknown, never "healthy")."""
    try:
        containers = json.loads(crictl_ps_json or "").get("containers") or []
    except (ValueError, AttributeError):
        return {}
    newest = {}
    for item in containers:
        name = (item.get("metadata") or {}).get("name")
        if name not in names:
            continue
        created = int(item.get("createdAt") or 0)
        if name not in newest or created >= newest[name][0]:
            newest[name] = (created, item.get("state"))
    return dict((name, newest[name][1] if name in newest else None) for name in names)
