#!/usr/bin/env python
# -*- coding: utf-8 -*-
# TEST STAND-IN - NOT KUBERNETES.
# Part of the lab stand-in for the Kubernetes pieces the dgx_spark.cluster roles call (tests/standin/README.md).
# It is never shipped in the built collection and is no evidence that a real cluster works.
#
# standin-apiserver: a small, stateful HTTPS server (python3 standard library only) that serves the subset of the
# Kubernetes API the collection's roles use through kubernetes.core (k8s_info, k8s, k8s_drain), plus the few
# controllers whose effects the roles observe: node lifecycle (Ready=Unknown after the grace period, taints), pod GC,
# namespace deletion, owner-reference GC, PDB status, bootstrap-token signer/cleaner, CSR approve+sign, a trivial
# scheduler and the kube-root-ca.crt publisher. State is one JSON file, written atomically after every change.
"""Kubernetes API stand-in for lab tests (NOT Kubernetes)."""

import argparse
import base64
import copy
import datetime
import hashlib
import http.server
import json
import math
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (_HERE, "/usr/local/lib/standin"):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import standin_common as C  # noqa: E402

# ----------------------------------------------------------------------------------------------------------------------
# Resource registry
# ----------------------------------------------------------------------------------------------------------------------

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Res:
    def __init__(self, group, version, plural, kind, namespaced, short=(), subs=None, categories=(),
                 status_sub=False, allow_create_on_update=False):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.short = list(short)
        self.subs = subs or {}
        self.categories = list(categories)
        self.status_sub = status_sub
        self.allow_create_on_update = allow_create_on_update
        self.singular = kind.lower()

    @property
    def gv(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def key(self):
        return "%s/%s" % (self.group or "core", self.plural)

    def discovery(self):
        d = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
             "kind": self.kind, "verbs": list(ALL_VERBS),
             "storageVersionHash": base64.b64encode(hashlib.sha256(self.key.encode()).digest()[:8]).decode()}
        if self.short:
            d["shortNames"] = self.short
        if self.categories:
            d["categories"] = self.categories
        return d


RESOURCES = [
    Res("", "v1", "configmaps", "ConfigMap", True, ["cm"], allow_create_on_update=False),
    Res("", "v1", "events", "Event", True, ["ev"], allow_create_on_update=True),
    Res("", "v1", "namespaces", "Namespace", False, ["ns"], status_sub=True,
        subs={"status": ("Namespace", ["get", "patch", "update"]), "finalize": ("Namespace", ["update"])}),
    Res("", "v1", "nodes", "Node", False, ["no"], status_sub=True,
        subs={"status": ("Node", ["get", "patch", "update"])}),
    Res("", "v1", "pods", "Pod", True, ["po"], categories=["all"], status_sub=True,
        subs={"status": ("Pod", ["get", "patch", "update"]), "eviction": ("Eviction", ["create"], "policy", "v1"),
              "binding": ("Binding", ["create"])}),
    Res("", "v1", "secrets", "Secret", True),
    Res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], status_sub=True,
        subs={"status": ("PodDisruptionBudget", ["get", "patch", "update"])}),
    Res("coordination.k8s.io", "v1", "leases", "Lease", True, allow_create_on_update=True),
    Res("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False, ["csr"],
        status_sub=True, subs={"approval": ("CertificateSigningRequest", ["get", "patch", "update"]),
                               "status": ("CertificateSigningRequest", ["get", "patch", "update"])}),
]
BY_GVP = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KEY = {r.key: r for r in RESOURCES}
GROUPS = {}
for _r in RESOURCES:
    if _r.group and _r.version not in GROUPS.setdefault(_r.group, []):
        GROUPS[_r.group].append(_r.version)

FIELD_LABELS = {
    "pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "nodes": {"metadata.name", "spec.unschedulable"},
    "namespaces": {"metadata.name", "status.phase"},
    "secrets": {"metadata.name", "metadata.namespace", "type"},
    "events": {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
               "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
               "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
               "source", "type"},
    "certificatesigningrequests": {"metadata.name", "spec.signerName"},
}

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

READYZ_CHECKS = [
    "ping", "log", "etcd", "etcd-readiness", "informer-sync",
    "poststarthook/start-kube-apiserver-admission-initializer", "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer", "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook", "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers", "poststarthook/crd-informer-synced",
    "poststarthook/bootstrap-controller", "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes", "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/start-cluster-authentication-info-controller", "poststarthook/aggregator-reload-proxy-client-cert",
    "poststarthook/start-kube-aggregator-informers", "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-status-available-controller", "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion", "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller", "shutdown",
]
LIVEZ_EXCLUDED = {"etcd-readiness", "informer-sync", "shutdown"}

ADMIN_GROUPS = {"system:masters", "kubeadm:cluster-admins"}


class ApiStatus(Exception):
    """A failure answered with a metav1.Status body."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self):
        b = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
             "reason": self.reason, "code": self.code}
        if self.details is not None:
            b["details"] = self.details
        return b


def not_found(res, name):
    return ApiStatus(404, "NotFound", '%s "%s" not found' % (_gr(res), name), {"name": name, "kind": res.plural})


def _gr(res):
    return res.plural if not res.group else "%s.%s" % (res.plural, res.group)


def invalid(res, name, causes):
    msg = "; ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
    if len(causes) > 1:
        msg = "[" + ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes) + "]"
    return ApiStatus(422, "Invalid", '%s "%s" is invalid: %s' % (res.kind, name, msg),
                     {"name": name, "group": res.group or None, "kind": res.kind, "causes": causes}
                     if res.group else {"name": name, "kind": res.kind, "causes": causes})


def conflict(res, name):
    return ApiStatus(409, "Conflict",
                     'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your '
                     'changes to the latest version and try again' % (_gr(res), name),
                     {"name": name, "kind": res.plural})


def bad_request(msg):
    return ApiStatus(400, "BadRequest", msg)


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# ----------------------------------------------------------------------------------------------------------------------
# Selectors
# ----------------------------------------------------------------------------------------------------------------------


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_LKEY = r"[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?"


def parse_label_selector(text):
    reqs = []
    for term in _split_top(text or ""):
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\((.*)\)" % _LKEY, term)
        if m:
            reqs.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}))
            continue
        m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)" % _LKEY, term)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.fullmatch(r"(!?)\s*(%s)" % _LKEY, term)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", set()))
            continue
        raise bad_request("unable to parse requested label selector %s" % json.dumps(text))
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        if op == "=" and labels.get(key) not in vals:
            return False
        if op == "!=" and key in labels and labels[key] in vals:
            return False
        if op == "in" and labels.get(key) not in vals:
            return False
        if op == "notin" and key in labels and labels[key] in vals:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def selector_matches(sel, labels):
    """metav1.LabelSelector (matchLabels/matchExpressions) against labels. None selects nothing."""
    if sel is None:
        return False
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), set(e.get("values") or [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def parse_field_selector(res, text):
    reqs = []
    for term in _split_top(text or ""):
        m = re.fullmatch(r"([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (text, term))
        field = m.group(1)
        allowed = FIELD_LABELS.get(res.plural, {"metadata.name", "metadata.namespace"})
        if field not in allowed and field not in ("metadata.name", "metadata.namespace"):
            raise bad_request('field label not supported: %s' % field)
        reqs.append((field, "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def field_value(obj, field):
    if field == "source":
        return str((obj.get("source") or {}).get("component") or "")
    cur = obj
    for part in field.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        if field in ("spec.unschedulable", "spec.hostNetwork"):
            return "false"
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs, obj):
    for field, op, val in reqs:
        v = field_value(obj, field)
        if op == "=" and v != val:
            return False
        if op == "!=" and v == val:
            return False
    return True


# ----------------------------------------------------------------------------------------------------------------------
# Patches
# ----------------------------------------------------------------------------------------------------------------------


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


SMP_MERGE_KEYS = {"conditions": "type", "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
                  "volumes": "name", "env": "name", "volumeMounts": "mountPath", "ports": "containerPort",
                  "addresses": "type", "ownerReferences": "uid", "imagePullSecrets": "name", "hostAliases": "ip",
                  "volumeDevices": "devicePath", "resourceClaims": "name"}
SMP_PRIMITIVE_MERGE = {"finalizers"}
_DELETE = object()


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def strategic_merge_patch(target, patch):
    """Strategic merge patch for the built-in kinds served here: JSON merge patch plus merge-by-key lists
    (conditions by type, containers by name, ...), merged primitive lists (finalizers) and the $patch directive."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in (v or [])]
            continue
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            nv = strategic_merge_patch(result.get(k), v)
            if nv is _DELETE:
                result.pop(k, None)
            else:
                result[k] = nv
        elif isinstance(v, list) and k in SMP_MERGE_KEYS and all(isinstance(x, dict) for x in v):
            if any(x.get("$patch") == "replace" for x in v):
                result[k] = [_strip_directives(x) for x in v if x.get("$patch") != "replace"]
                continue
            mk = SMP_MERGE_KEYS[k]
            cur = copy.deepcopy(result.get(k)) if isinstance(result.get(k), list) else []
            for item in v:
                idx = next((i for i, c in enumerate(cur) if isinstance(c, dict) and c.get(mk) == item.get(mk)), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        cur.pop(idx)
                elif idx is None:
                    cur.append(_strip_directives(item))
                else:
                    cur[idx] = strategic_merge_patch(cur[idx], item)
            result[k] = cur
        elif isinstance(v, list) and k in SMP_PRIMITIVE_MERGE:
            cur = list(result.get(k) or [])
            for x in v:
                if x not in cur:
                    cur.append(x)
            result[k] = cur
        else:
            result[k] = _strip_directives(copy.deepcopy(v))
    return result


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request("invalid JSON pointer %s" % json.dumps(path))
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")

    def parent(d, parts):
        for p in parts[:-1]:
            if isinstance(d, list):
                d = d[int(p)]
            else:
                d = d[p]
        return d

    def get(d, parts):
        for p in parts:
            d = d[int(p)] if isinstance(d, list) else d[p]
        return d

    for op in ops:
        kind, parts = op.get("op"), _ptr(op.get("path", ""))
        try:
            if kind == "test":
                if get(doc, parts) != op.get("value"):
                    raise ApiStatus(422, "Invalid", "the server rejected our request due to an error in our request")
                continue
            if kind in ("move", "copy"):
                val = copy.deepcopy(get(doc, _ptr(op.get("from", ""))))
                if kind == "move":
                    fp = _ptr(op["from"])
                    fpar = parent(doc, fp)
                    if isinstance(fpar, list):
                        fpar.pop(int(fp[-1]))
                    else:
                        del fpar[fp[-1]]
                kind, op = "add", {"value": val}
            if not parts:
                doc = copy.deepcopy(op.get("value"))
                continue
            par, last = parent(doc, parts), parts[-1]
            if kind == "add":
                if isinstance(par, list):
                    if last == "-":
                        par.append(copy.deepcopy(op.get("value")))
                    else:
                        par.insert(int(last), copy.deepcopy(op.get("value")))
                else:
                    par[last] = copy.deepcopy(op.get("value"))
            elif kind == "remove":
                if isinstance(par, list):
                    par.pop(int(last))
                else:
                    del par[last]
            elif kind == "replace":
                if isinstance(par, list):
                    par[int(last)] = copy.deepcopy(op.get("value"))
                else:
                    if last not in par:
                        raise KeyError(last)
                    par[last] = copy.deepcopy(op.get("value"))
            else:
                raise bad_request("Unexpected kind: %s" % kind)
        except ApiStatus:
            raise
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiStatus(422, "Invalid", "the server rejected our request due to an error in our request")
    return doc


# ----------------------------------------------------------------------------------------------------------------------
# The store and the API logic
# ----------------------------------------------------------------------------------------------------------------------


def _k(ns, name):
    return "%s/%s" % (ns or "", name)


def pod_ready(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def node_ready_status(node):
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return None


class User:
    def __init__(self, name, groups, uid="", kind="anonymous"):
        self.name, self.groups, self.uid, self.kind = name, list(groups), uid, kind

    @property
    def admin(self):
        return bool(ADMIN_GROUPS & set(self.groups))

    @property
    def node_name(self):
        if "system:nodes" in self.groups and self.name.startswith("system:node:"):
            return self.name[len("system:node:"):]
        return None


class Api:
    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.RLock()
        self.rv = 0
        self.store = {r.key: {} for r in RESOURCES}
        self.state_file = os.path.join(opts.data_dir, "state.json")
        self.dirty = False
        self.started = time.time()
        self.node_seen = {}
        self.orphan_seen = {}
        self.static_tokens = {}
        self.journal = []            # [(seq, type, resource key, object copy)] for watch
        self.journal_seq = 0
        self.journal_cv = threading.Condition(self.lock)
        self._snap = {}
        self._load_token_file()
        self._load()
        self._record_changes()
        self._bootstrap()

    # ---- persistence -------------------------------------------------------------------------------------------
    def _load(self):
        try:
            with open(self.state_file, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return
        self.rv = int(data.get("resourceVersion", 0))
        for key, objs in (data.get("objects") or {}).items():
            if key in self.store:
                self.store[key] = objs

    def _record_changes(self):
        """Diff the store against the last snapshot and append watch events (called at every commit point)."""
        cur = {}
        for r in RESOURCES:
            for k, o in self.store[r.key].items():
                cur[(r.key, k)] = o
        events = []
        for key, o in cur.items():
            old = self._snap.get(key)
            rv = o["metadata"].get("resourceVersion")
            if old is None:
                events.append(("ADDED", key, o))
            elif old[0] != rv or old[1]["metadata"].get("uid") != o["metadata"].get("uid"):
                events.append(("MODIFIED", key, o))
        for key, old in list(self._snap.items()):
            if key not in cur:
                events.append(("DELETED", key, old[1]))
                del self._snap[key]
        for kind, key, o in events:
            if kind != "DELETED":
                self._snap[key] = (o["metadata"].get("resourceVersion"), copy.deepcopy(o))
            self.journal_seq += 1
            self.journal.append((self.journal_seq, kind, key[0], copy.deepcopy(o) if kind != "DELETED" else o))
        if len(self.journal) > 5000:
            del self.journal[:len(self.journal) - 5000]
        if events:
            with self.lock:
                self.journal_cv.notify_all()

    def persist(self):
        self._record_changes()
        data = {"standin": C.STANDIN_MARK, "resourceVersion": self.rv, "objects": self.store}
        C.write_atomic(self.state_file, json.dumps(data, separators=(",", ":"), sort_keys=True), mode=0o600)
        self.dirty = False

    def _load_token_file(self):
        path = self.opts.token_auth_file
        if not path:
            return
        text = C.read_text(C.P(path)) or ""
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cols = next(iter(__import__("csv").reader([line])))
            if len(cols) >= 3:
                groups = [g for g in (cols[3].split(",") if len(cols) > 3 else []) if g]
                self.static_tokens[cols[0]] = User(cols[1], groups + ["system:authenticated"], cols[2], "token")

    def _bootstrap(self):
        with self.lock:
            for ns in PROTECTED_NAMESPACES:
                if _k("", ns) not in self.store["core/namespaces"]:
                    self.create(BY_KEY["core/namespaces"], None, {"metadata": {"name": ns}}, internal=True)
            if self.dirty:
                self.persist()

    # ---- helpers -------------------------------------------------------------------------------------------------
    def next_rv(self):
        self.rv += 1
        self.dirty = True
        return str(self.rv)

    def objs(self, res):
        return self.store[res.key]

    def get_obj(self, res, ns, name):
        return self.store[res.key].get(_k(ns if res.namespaced else None, name))

    def with_kind(self, res, obj):
        o = copy.deepcopy(obj)
        out = {"kind": res.kind, "apiVersion": res.gv}
        out.update({k: v for k, v in o.items() if k not in ("kind", "apiVersion")})
        return out

    def _ns_check(self, res, ns, creating=True):
        if not res.namespaced:
            return
        nsobj = self.store["core/namespaces"].get(_k("", ns))
        if nsobj is None:
            raise ApiStatus(404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"})
        if creating and (nsobj.get("status") or {}).get("phase") == "Terminating":
            raise ApiStatus(403, "Forbidden", '%s "%s" is forbidden: unable to create new content in namespace %s '
                            'because it is being terminated' % (_gr(res), "", ns),
                            {"name": "", "kind": res.plural, "causes": [
                                {"reason": "NamespaceTerminating",
                                 "message": "namespace %s is being terminated" % ns,
                                 "field": "metadata.namespace"}]})

    # ---- defaults & validation -------------------------------------------------------------------------------------
    def defaults(self, res, obj, user):
        with_spec = ("Pod", "Node", "Namespace", "PodDisruptionBudget", "Lease", "CertificateSigningRequest")
        spec = obj.setdefault("spec", {}) if res.kind in with_spec else None
        md = obj["metadata"]
        if res.kind == "Namespace":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            spec.setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif res.kind == "Pod":
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("securityContext", {})
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            spec.setdefault("priority", 0)
            tol = spec.setdefault("tolerations", [])
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
                if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tol) \
                        and not any(t.get("operator") == "Exists" and not t.get("key") for t in tol):
                    tol.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                if isinstance(c, dict):
                    img = str(c.get("image") or "")
                    tagless = ":" not in img.rsplit("/", 1)[-1] and "@" not in img
                    c.setdefault("imagePullPolicy", "Always" if (img.endswith(":latest") or tagless) else "IfNotPresent")
                    c.setdefault("terminationMessagePath", "/dev/termination-log")
                    c.setdefault("terminationMessagePolicy", "File")
                    c.setdefault("resources", {})
            st = obj.setdefault("status", {})
            st.setdefault("phase", "Pending")
            st["qosClass"] = _qos(spec)
        elif res.kind == "Node":
            st = obj.setdefault("status", {})
            st.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
            st.setdefault("nodeInfo", {k: "" for k in ("architecture", "bootID", "containerRuntimeVersion",
                                                       "kernelVersion", "kubeProxyVersion", "kubeletVersion",
                                                       "machineID", "operatingSystem", "osImage", "systemUUID")})
            if self.opts.cluster_cidr and not spec.get("podCIDR"):
                cidr = self._alloc_pod_cidr()
                if cidr:
                    spec["podCIDR"], spec["podCIDRs"] = cidr, [cidr]
        elif res.kind == "Secret":
            obj.setdefault("type", "Opaque")
        elif res.kind == "Event":
            now = C.rfc3339()
            obj.setdefault("count", 1)
            obj.setdefault("type", "Normal")
            obj.setdefault("firstTimestamp", now)
            obj.setdefault("lastTimestamp", obj["firstTimestamp"])
            obj.setdefault("reportingComponent", "")
            obj.setdefault("reportingInstance", "")
            obj.setdefault("source", {})
        elif res.kind == "PodDisruptionBudget":
            obj.setdefault("status", {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                      "expectedPods": 0})
        elif res.kind == "CertificateSigningRequest":
            if user is not None:
                spec["username"] = user.name
                spec["groups"] = list(user.groups)
                if user.uid:
                    spec["uid"] = user.uid
            obj.setdefault("status", {})

    def _alloc_pod_cidr(self):
        import ipaddress
        try:
            net = ipaddress.ip_network(self.opts.cluster_cidr, strict=False)
        except ValueError:
            return None
        mask = max(net.prefixlen, min(24, net.max_prefixlen))
        used = {n.get("spec", {}).get("podCIDR") for n in self.store["core/nodes"].values()}
        for sub in net.subnets(new_prefix=mask) if mask > net.prefixlen else [net]:
            if str(sub) not in used:
                return str(sub)
        return None

    def validate(self, res, obj, old=None):
        md = obj.get("metadata") or {}
        name = md.get("name") or ""
        causes = []
        rx = DNS1123_LABEL if res.kind in ("Namespace",) else DNS1123_SUBDOMAIN
        if res.kind == "Event":
            rx = None
        if rx is not None and (not rx.match(name) or len(name) > (63 if rx is DNS1123_LABEL else 253)):
            if rx is DNS1123_LABEL:
                msg = ("Invalid value: %s: a lowercase RFC 1123 label must consist of lower case alphanumeric "
                       "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
                       "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')" % json.dumps(name))
            else:
                msg = ("Invalid value: %s: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                       "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                       "'example.com', regex used for validation is "
                       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" % json.dumps(name))
            causes.append({"reason": "FieldValueInvalid", "message": msg, "field": "metadata.name"})
        for f in ("labels", "annotations"):
            v = md.get(f)
            if v is not None and (not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values())):
                causes.append({"reason": "FieldValueInvalid", "message": "Invalid value: must be a map of strings",
                               "field": "metadata.%s" % f})
        if res.kind == "Pod":
            spec = obj.get("spec") or {}
            ctrs = spec.get("containers")
            if not ctrs:
                causes.append({"reason": "FieldValueRequired", "message": "Required value",
                               "field": "spec.containers"})
            for i, c in enumerate(ctrs or []):
                if not isinstance(c, dict) or not c.get("name"):
                    causes.append({"reason": "FieldValueRequired", "message": "Required value",
                                   "field": "spec.containers[%d].name" % i})
                if not isinstance(c, dict) or not c.get("image"):
                    causes.append({"reason": "FieldValueRequired", "message": "Required value",
                                   "field": "spec.containers[%d].image" % i})
            if old is not None:
                causes += _pod_update_causes(old, obj)
        if res.kind == "PodDisruptionBudget":
            spec = obj.get("spec") or {}
            if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
                causes.append({"reason": "FieldValueInvalid", "message": "Invalid value: minAvailable and "
                               "maxUnavailable cannot be both set", "field": "spec"})
        if res.kind == "Secret" and old is not None and old.get("type") != obj.get("type"):
            causes.append({"reason": "FieldValueInvalid", "message": "Invalid value: %s: field is immutable"
                           % json.dumps(obj.get("type")), "field": "type"})
        if res.kind == "Secret":
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(v or "", validate=True)
                except (ValueError, TypeError):
                    raise bad_request("illegal base64 data in Secret data key %s" % json.dumps(k))
        if causes:
            raise invalid(res, name, causes)

    # ---- authn / authz -----------------------------------------------------------------------------------------------
    def authenticate(self, peercert, auth_header):
        if auth_header:
            if not auth_header.lower().startswith("bearer "):
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            token = auth_header[7:].strip()
            u = self.static_tokens.get(token)
            if u:
                return u
            m = C.TOKEN_RE.match(token)
            if m:
                with self.lock:
                    sec = self.store["core/secrets"].get(_k("kube-system", "bootstrap-token-" + m.group(1)))
                    if sec and _bootstrap_token_valid(sec, m.group(1), m.group(2), usage="authentication"):
                        data = _secret_data(sec)
                        extra = [g for g in (data.get("auth-extra-groups") or "").split(",") if g]
                        return User("system:bootstrap:" + m.group(1),
                                    ["system:bootstrappers"] + extra + ["system:authenticated"], "", "bootstrap")
            raise ApiStatus(401, "Unauthorized", "Unauthorized")
        if peercert and peercert.get("subject"):
            cn, orgs = None, []
            for rdn in peercert["subject"]:
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            if cn:
                return User(cn, orgs + ["system:authenticated"], "", "x509")
        if not self.opts.anonymous_auth:
            raise ApiStatus(401, "Unauthorized", "Unauthorized")
        return User("system:anonymous", ["system:unauthenticated"], "", "anonymous")

    def authorize(self, user, verb, res, ns, name, sub, path):
        if user.admin:
            return
        if res is None:
            # non-resource URLs
            health = ("/healthz", "/livez", "/readyz")
            if path in health + ("/version",) or path.startswith(tuple(h + "/" for h in health)):
                return
            if user.kind != "anonymous" and (path in ("/api", "/apis") or path.startswith(("/api/", "/apis/"))):
                return
            raise ApiStatus(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"'
                            % (user.name, verb, path), {})
        rname = res.plural + ("/" + sub if sub else "")
        ok = False
        node = user.node_name
        if node is not None:
            ok = True
            if res.kind == "Node" and verb in ("create", "update", "patch", "delete") and name not in (None, node):
                ok = False
            if res.kind == "Node" and verb == "deletecollection":
                ok = False
        elif "system:bootstrappers" in user.groups:
            ok = ((res.plural == "nodes" and verb == "get")
                  or (res.plural == "configmaps" and verb == "get" and ns == "kube-system"
                      and name in ("kubeadm-config", "kubelet-config", "kube-proxy"))
                  or (res.plural == "configmaps" and verb == "get" and ns == "kube-public" and name == "cluster-info")
                  or (res.plural == "certificatesigningrequests" and verb in ("create", "get", "list", "watch")
                      and not sub))
        elif user.kind == "anonymous":
            ok = res.plural == "configmaps" and verb == "get" and ns == "kube-public" and name == "cluster-info"
        if ok:
            return
        scope = ('in the namespace "%s"' % ns) if ns else "at the cluster scope"
        msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
            ("%s \"%s\"" % (_gr(res), name)) if name else _gr(res), user.name, verb, rname, res.group, scope)
        raise ApiStatus(403, "Forbidden", msg, {"name": name, "kind": res.plural} if name else {"kind": res.plural})

    # ---- verbs ----------------------------------------------------------------------------------------------------
    def list(self, res, ns, query):
        lsel = parse_label_selector(query.get("labelSelector", ""))
        fsel = parse_field_selector(res, query.get("fieldSelector", ""))
        with self.lock:
            items = []
            for obj in self.objs(res).values():
                md = obj["metadata"]
                if res.namespaced and ns and md.get("namespace") != ns:
                    continue
                if not labels_match(lsel, md.get("labels")):
                    continue
                if not fields_match(fsel, obj):
                    continue
                items.append(obj)
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            rv = str(self.rv)
        meta = {"resourceVersion": rv}
        limit = int(query.get("limit") or 0)
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.b64decode(query["continue"]))["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiStatus(410, "Expired", "The provided continue parameter is too old to display a "
                                "consistent list result. You can start a new list without the continue parameter.")
        if limit > 0:
            page = items[start:start + limit]
            if start + limit < len(items):
                meta["continue"] = base64.b64encode(json.dumps({"start": start + limit, "rv": rv}).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        return {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": meta,
                "items": [copy.deepcopy(o) for o in items]}

    def get(self, res, ns, name):
        with self.lock:
            obj = self.get_obj(res, ns, name)
            if obj is None:
                raise not_found(res, name)
            return self.with_kind(res, obj)

    def create(self, res, ns, body, user=None, dry=False, internal=False):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format - accepted media types include: "
                              "application/json, application/yaml, application/vnd.kubernetes.protobuf")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, res.gv):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                              % (obj.get("apiVersion"), res.gv))
        if obj.get("kind") not in (None, res.kind):
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                              % (obj.get("kind"), res.kind))
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            ns = ns or md.get("namespace")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            else:
                raise invalid(res, "", [{"reason": "FieldValueRequired", "message": "Required value: name or "
                                         "generateName is required", "field": "metadata.name"}])
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "managedFields", "selfLink"):
            md.pop(k, None)
        if res.kind == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {}) or {}
            for k, v in (obj.pop("stringData") or {}).items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        if user is not None and user.node_name is not None and res.kind == "Node" and \
                md["name"] != user.node_name:
            # NodeRestriction admission
            raise ApiStatus(403, "Forbidden", 'nodes "%s" is forbidden: node "%s" is not allowed to modify node "%s"'
                            % (md["name"], user.node_name, md["name"]), {"name": md["name"], "kind": "nodes"})
        with self.lock:
            self._ns_check(res, ns)
            self.defaults(res, obj, user)
            self.validate(res, obj)
            if self.get_obj(res, ns, md["name"]) is not None:
                raise ApiStatus(409, "AlreadyExists", '%s "%s" already exists' % (_gr(res), md["name"]),
                                {"name": md["name"], "kind": res.plural} if not res.group else
                                {"name": md["name"], "group": res.group, "kind": res.plural})
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = C.rfc3339()
            md["generation"] = 1
            if dry:
                md["resourceVersion"] = str(self.rv)
                return self.with_kind(res, obj)
            md["resourceVersion"] = self.next_rv()
            self.objs(res)[_k(ns if res.namespaced else None, md["name"])] = obj
            if res.kind == "CertificateSigningRequest":
                self._csr_autoapprove(obj)
                self._csr_sign(obj)
            if not internal:
                self.persist()
            return self.with_kind(res, obj)

    def _apply_update(self, res, ns, name, new, old, sub, user, dry, check_rv=True):
        """Shared tail of PUT and PATCH. `new` is the full desired object."""
        if not isinstance(new, dict):
            raise bad_request("the body of the request was in an unknown format")
        new = copy.deepcopy(new)
        new.pop("kind", None)
        new.pop("apiVersion", None)
        md = new.setdefault("metadata", {}) or {}
        new["metadata"] = md
        if md.get("name") not in (None, name):
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (md.get("name"), name))
        if res.namespaced and md.get("namespace") not in (None, ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if check_rv and md.get("resourceVersion") and md["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        omd = old["metadata"]
        if sub in ("status", "approval"):
            merged = copy.deepcopy(old)
            if sub == "status":
                merged["status"] = new.get("status", {})
            else:
                merged.setdefault("status", {})["conditions"] = (new.get("status") or {}).get("conditions") or []
            new = merged
            md = new["metadata"]
        else:
            if res.status_sub:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if res.kind == "Secret" and "stringData" in new:
                data = new.get("data") or {}
                for k, v in (new.pop("stringData") or {}).items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                new["data"] = data
            if res.kind == "Namespace":
                new["spec"] = copy.deepcopy(old.get("spec") or {}) if sub != "finalize" else new.get("spec", {})
                md.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            if res.kind == "CertificateSigningRequest":
                new["spec"] = copy.deepcopy(old.get("spec") or {})
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        md["name"] = name
        if res.namespaced:
            md["namespace"] = ns
        md.pop("managedFields", None)
        md.pop("selfLink", None)
        if res.kind == "Pod" and sub is None:
            self.validate(res, new, old)
        else:
            self.validate(res, new, None if res.kind != "Secret" else old)
        md["resourceVersion"] = omd["resourceVersion"]
        if new == old:
            return self.with_kind(res, old)
        if {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in old.items() if k not in ("metadata", "status")}:
            md["generation"] = int(omd.get("generation") or 1) + 1
        if dry:
            return self.with_kind(res, new)
        md["resourceVersion"] = self.next_rv()
        key = _k(ns if res.namespaced else None, name)
        self.objs(res)[key] = new
        if md.get("deletionTimestamp") and not md.get("finalizers") and res.kind != "Namespace" and \
                not (res.kind == "Pod" and (new.get("spec") or {}).get("nodeName")
                     and (new.get("status") or {}).get("phase") not in ("Succeeded", "Failed")):
            self._remove(res, key, new, "Background")
        if res.kind == "CertificateSigningRequest":
            self._csr_sign(new)
        self.persist()
        return self.with_kind(res, new)

    def replace(self, res, ns, name, body, sub=None, user=None, dry=False):
        with self.lock:
            old = self.get_obj(res, ns, name)
            if old is None:
                if res.allow_create_on_update and sub is None:
                    b = copy.deepcopy(body)
                    b.setdefault("metadata", {})["name"] = name
                    return 201, self.create(res, ns, b, user, dry)
                raise not_found(res, name)
            return 200, self._apply_update(res, ns, name, body, old, sub, user, dry)

    def patch(self, res, ns, name, body, ctype, sub=None, user=None, dry=False, force=False):
        ctype = (ctype or "").split(";")[0].strip().lower()
        with self.lock:
            old = self.get_obj(res, ns, name)
            if ctype == "application/apply-patch+yaml":
                if isinstance(body, (bytes, str)):
                    try:
                        body = C.yaml_load(body.decode() if isinstance(body, bytes) else body)
                    except ValueError as exc:
                        raise bad_request("error decoding YAML: %s" % exc)
                if old is None:
                    b = copy.deepcopy(body)
                    b.setdefault("metadata", {})["name"] = name
                    return 201, self.create(res, ns, b, user, dry)
            if old is None:
                raise not_found(res, name)
            base = self.with_kind(res, old)
            if ctype == "application/json-patch+json":
                patched = json_patch(base, body)
            elif ctype == "application/merge-patch+json":
                patched = merge_patch(base, body)
            elif ctype in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
                patched = strategic_merge_patch(base, body)
                if patched is _DELETE:
                    raise bad_request("cannot delete the whole object with a patch")
            else:
                raise ApiStatus(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - '
                                'accepted media types include: application/json-patch+json, '
                                'application/merge-patch+json, application/apply-patch+yaml, '
                                'application/strategic-merge-patch+json')
            check_rv = isinstance(body, dict) and bool((body.get("metadata") or {}).get("resourceVersion"))
            return 200, self._apply_update(res, ns, name, patched, old, sub, user, dry, check_rv=check_rv)

    def delete(self, res, ns, name, options, user=None, dry=False):
        options = options or {}
        with self.lock:
            key = _k(ns if res.namespaced else None, name)
            obj = self.objs(res).get(key)
            if obj is None:
                raise not_found(res, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
                raise ApiStatus(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                                'UID in precondition: %s, UID in object meta: %s'
                                % (_gr(res), name, pre["uid"], obj["metadata"].get("uid")),
                                {"name": name, "kind": res.plural})
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"].get("resourceVersion"):
                raise ApiStatus(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                                'ResourceVersion in precondition: %s, ResourceVersion in object meta: %s'
                                % (_gr(res), name, pre["resourceVersion"], obj["metadata"].get("resourceVersion")),
                                {"name": name, "kind": res.plural})
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                policy = "Orphan"
            if res.kind == "Namespace" and name in PROTECTED_NAMESPACES:
                raise ApiStatus(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted'
                                % name, {"name": name, "kind": "namespaces"})
            if dry:
                return 200, self._delete_response(res, obj)
            md = obj["metadata"]
            if res.kind == "Namespace":
                if not md.get("deletionTimestamp"):
                    md["deletionTimestamp"] = C.rfc3339()
                    md["deletionGracePeriodSeconds"] = 0
                    obj["status"] = {"phase": "Terminating"}
                    md["resourceVersion"] = self.next_rv()
                    self.persist()
                return 200, self.with_kind(res, obj)
            if res.kind == "Pod":
                grace = options.get("gracePeriodSeconds")
                phase = (obj.get("status") or {}).get("phase")
                bound = bool((obj.get("spec") or {}).get("nodeName"))
                if grace is None:
                    grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                    if md.get("deletionGracePeriodSeconds") is not None:
                        grace = min(grace, md["deletionGracePeriodSeconds"])
                if bound and phase not in ("Succeeded", "Failed") and int(grace) > 0:
                    if not md.get("deletionTimestamp") or int(grace) < int(md.get("deletionGracePeriodSeconds") or 0):
                        md["deletionTimestamp"] = C.rfc3339(C.utcnow() + datetime.timedelta(seconds=int(grace)))
                        md["deletionGracePeriodSeconds"] = int(grace)
                        md["resourceVersion"] = self.next_rv()
                        self.persist()
                    return 200, self.with_kind(res, obj)
            if md.get("finalizers"):
                if not md.get("deletionTimestamp"):
                    md["deletionTimestamp"] = C.rfc3339()
                    md["deletionGracePeriodSeconds"] = 0
                    md["resourceVersion"] = self.next_rv()
                    self.persist()
                return 200, self.with_kind(res, obj)
            out = self._delete_response(res, obj)
            self._remove(res, key, obj, policy or "Background")
            self.persist()
            return 200, out

    def _delete_response(self, res, obj):
        if res.kind in ("Pod", "Namespace"):
            return self.with_kind(res, obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": obj["metadata"]["name"], "group": res.group or None, "kind": res.plural,
                            "uid": obj["metadata"].get("uid")} if res.group else
                {"name": obj["metadata"]["name"], "kind": res.plural, "uid": obj["metadata"].get("uid")}}

    def _remove(self, res, key, obj, policy):
        self.objs(res).pop(key, None)
        self.next_rv()
        uid = obj["metadata"].get("uid")
        if policy == "Orphan":
            for r in RESOURCES:
                for o in self.objs(r).values():
                    refs = o["metadata"].get("ownerReferences") or []
                    if any(x.get("uid") == uid for x in refs):
                        o["metadata"]["ownerReferences"] = [x for x in refs if x.get("uid") != uid]
                        if not o["metadata"]["ownerReferences"]:
                            del o["metadata"]["ownerReferences"]
                        o["metadata"]["resourceVersion"] = self.next_rv()
        elif policy == "Foreground":
            self.gc()

    def deletecollection(self, res, ns, query, options, user=None, dry=False):
        listing = self.list(res, ns, query)
        for item in listing["items"]:
            try:
                self.delete(res, item["metadata"].get("namespace"), item["metadata"]["name"], options, user, dry)
            except ApiStatus:
                pass
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    # ---- subresources -------------------------------------------------------------------------------------------
    def evict(self, ns, name, body, user=None, dry=False):
        res = BY_KEY["core/pods"]
        with self.lock:
            pod = self.get_obj(res, ns, name)
            if pod is None:
                raise not_found(res, name)
            options = (body or {}).get("deleteOptions") or {}
            phase = (pod.get("status") or {}).get("phase")
            if not (phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp")):
                pdbs = [p for p in self.objs(BY_KEY["policy/poddisruptionbudgets"]).values()
                        if p["metadata"]["namespace"] == ns
                        and selector_matches((p.get("spec") or {}).get("selector") or {}, pod["metadata"].get("labels"))]
                if len(pdbs) > 1:
                    raise ApiStatus(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                                    "eviction subresource does not support.")
                if pdbs:
                    pdb = pdbs[0]
                    st = self.pdb_status(pdb)
                    healthy = pod_ready(pod)
                    if healthy and st["disruptionsAllowed"] <= 0:
                        raise ApiStatus(429, "TooManyRequests",
                                        "Cannot evict pod as it would violate the pod's disruption budget.",
                                        {"causes": [{"reason": "DisruptionBudget", "message":
                                                     "The disruption budget %s needs %d healthy pods and has %d "
                                                     "currently" % (pdb["metadata"]["name"], st["desiredHealthy"],
                                                                    st["currentHealthy"])}]})
                    always = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                    if not healthy and not always and st["currentHealthy"] < st["desiredHealthy"]:
                        raise ApiStatus(429, "TooManyRequests",
                                        "Cannot evict pod as it would violate the pod's disruption budget.",
                                        {"causes": [{"reason": "DisruptionBudget", "message":
                                                     "The disruption budget %s does not allow evicting pods "
                                                     "currently" % pdb["metadata"]["name"]}]})
            if dry:
                return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
            self.delete(res, ns, name, options, user)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def bind(self, ns, name, body, user=None, dry=False):
        res = BY_KEY["core/pods"]
        with self.lock:
            pod = self.get_obj(res, ns, name)
            if pod is None:
                raise not_found(res, name)
            target = ((body or {}).get("target") or {}).get("name")
            if (pod.get("spec") or {}).get("nodeName"):
                raise ApiStatus(409, "Conflict", 'Operation cannot be fulfilled on pods/binding "%s": pod %s is '
                                'already assigned to node "%s"' % (name, name, pod["spec"]["nodeName"]),
                                {"name": name, "kind": "pods/binding"})
            if not dry:
                self._bind(pod, target)
                self.persist()
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _bind(self, pod, node):
        pod["spec"]["nodeName"] = node
        st = pod.setdefault("status", {})
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": C.rfc3339()})
        st["conditions"] = conds
        pod["metadata"]["resourceVersion"] = self.next_rv()
        self.event(pod, "Pod", "Scheduled", "Successfully assigned %s/%s to %s"
                   % (pod["metadata"]["namespace"], pod["metadata"]["name"], node), component="default-scheduler")

    # ---- events --------------------------------------------------------------------------------------------------
    def event(self, obj, kind, reason, message, etype="Normal", component="node-controller", host=None, api="v1"):
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        now = C.rfc3339()
        ev = {"metadata": {"name": "%s.%x" % (md["name"], time.time_ns()), "namespace": ns},
              "involvedObject": {"kind": kind, "name": md["name"], "uid": md.get("uid"), "apiVersion": api},
              "reason": reason, "message": message, "type": etype, "count": 1,
              "firstTimestamp": now, "lastTimestamp": now,
              "source": {"component": component, **({"host": host} if host else {})},
              "reportingComponent": component, "reportingInstance": host or ""}
        if md.get("namespace"):
            ev["involvedObject"]["namespace"] = md["namespace"]
        try:
            self.create(BY_KEY["core/events"], ns, ev, internal=True)
        except ApiStatus:
            pass
        evs = self.store["core/events"]
        if len(evs) > 1000:
            for key in sorted(evs, key=lambda k: int(evs[k]["metadata"]["resourceVersion"]))[:len(evs) - 1000]:
                del evs[key]

    # ---- PDB --------------------------------------------------------------------------------------------------------
    def pdb_status(self, pdb):
        ns = pdb["metadata"]["namespace"]
        spec = pdb.get("spec") or {}
        sel = spec.get("selector") or {}
        pods = [p for p in self.store["core/pods"].values() if p["metadata"]["namespace"] == ns
                and selector_matches(sel, p["metadata"].get("labels"))
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        healthy = [p for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
        expected = len(pods)

        def val(v, round_up):
            if isinstance(v, str) and v.endswith("%"):
                f = float(v[:-1]) / 100.0 * expected
                return int(math.ceil(f)) if round_up else int(math.floor(f))
            return int(v)

        if spec.get("maxUnavailable") is not None:
            desired = max(0, expected - val(spec["maxUnavailable"], True))
        elif spec.get("minAvailable") is not None:
            desired = val(spec["minAvailable"], True)
        else:
            desired = expected
        allowed = max(0, len(healthy) - desired)
        return {"observedGeneration": pdb["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
                "currentHealthy": len(healthy), "desiredHealthy": desired, "expectedPods": expected}

    # ---- CSR --------------------------------------------------------------------------------------------------------
    def _csr_autoapprove(self, csr):
        spec = csr.get("spec") or {}
        if spec.get("signerName") != "kubernetes.io/kube-apiserver-client-kubelet":
            return
        try:
            cn, orgs = C.csr_subject(base64.b64decode(spec.get("request") or ""))
        except (RuntimeError, ValueError):
            return
        if not (cn or "").startswith("system:node:") or orgs != ["system:nodes"]:
            return
        groups = set(spec.get("groups") or [])
        if not ("system:bootstrappers" in groups or spec.get("username") == cn or ADMIN_GROUPS & groups):
            return
        st = csr.setdefault("status", {})
        st["conditions"] = [{"type": "Approved", "status": "True", "reason": "AutoApproved",
                             "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                             "lastUpdateTime": C.rfc3339(), "lastTransitionTime": C.rfc3339()}]

    def _csr_sign(self, csr):
        st = csr.setdefault("status", {})
        if st.get("certificate"):
            return
        if not any(c.get("type") == "Approved" and c.get("status") == "True" for c in st.get("conditions") or []):
            return
        if any(c.get("type") in ("Denied", "Failed") for c in st.get("conditions") or []):
            return
        spec = csr.get("spec") or {}
        if spec.get("signerName") not in ("kubernetes.io/kube-apiserver-client-kubelet",
                                          "kubernetes.io/kube-apiserver-client"):
            return
        ca_cert, ca_key = self.opts.signing_cert_file, self.opts.signing_key_file
        if not (ca_cert and ca_key and os.path.exists(C.P(ca_key))):
            return
        try:
            days = max(1, int((spec.get("expirationSeconds") or 365 * 86400) // 86400))
            cert = C.sign_csr(base64.b64decode(spec.get("request") or ""), C.P(ca_cert), C.P(ca_key),
                              kind="client", days=days)
        except (RuntimeError, ValueError) as exc:
            C.klog("E", "certificate_controller.go:151", "Sync failed", err=str(exc))
            return
        st["certificate"] = base64.b64encode(cert).decode()
        csr["metadata"]["resourceVersion"] = self.next_rv()

    # ---- controllers ------------------------------------------------------------------------------------------------
    def controllers(self):
        with self.lock:
            try:
                self._node_lifecycle()
                self._namespace_controller()
                self.gc()
                self._pod_gc()
                self._bootstrap_signer()
                self._pdb_controller()
                self._root_ca_publisher()
                self._scheduler()
                self._csr_controller()
            except Exception:  # pragma: no cover - keep the loop alive, but say what happened
                traceback.print_exc()
            if self.dirty:
                self.persist()

    def _node_lifecycle(self):
        grace = self.opts.node_monitor_grace_period
        now = C.utcnow()
        leases = self.store["coordination.k8s.io/leases"]
        for key, node in list(self.store["core/nodes"].items()):
            md = node["metadata"]
            name = md["name"]
            st = node.setdefault("status", {})
            conds = st.get("conditions") or []
            ready = next((c for c in conds if c.get("type") == "Ready"), None)
            if md.get("uid") not in self.node_seen:
                self.node_seen[md.get("uid")] = True
                self.event(node, "Node", "RegisteredNode", "Node %s event: Registered Node %s in Controller"
                           % (name, name))
            probe = C.parse_time(ready.get("lastHeartbeatTime")) if ready else None
            lease = leases.get(_k("kube-node-lease", name))
            lt = C.parse_time(((lease or {}).get("spec") or {}).get("renewTime")) if lease else None
            if lt and (probe is None or lt > probe):
                probe = lt
            created = C.parse_time(md.get("creationTimestamp")) or now
            changed = False
            if ready is None:
                if (now - created).total_seconds() > grace:
                    msg = "Kubelet never posted node status."
                    st["conditions"] = [self._unknown_cond(t, msg, None, now) for t in
                                        ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")]
                    changed = True
            elif ready.get("status") != "Unknown" and probe is not None and (now - probe).total_seconds() > grace:
                msg = "Kubelet stopped posting node status."
                newc = []
                for c in conds:
                    if c.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                        newc.append(self._unknown_cond(c["type"], msg, c.get("lastHeartbeatTime"), now))
                    else:
                        newc.append(c)
                st["conditions"] = newc
                changed = True
                self.event(node, "Node", "NodeNotReady", "Node %s status is now: NodeNotReady" % name)
            # taints managed by the node lifecycle controller
            rs = node_ready_status(node)
            want = []
            if rs == "False":
                want = [("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute")]
            elif rs in ("Unknown", None):
                if rs is None:
                    want = [("node.kubernetes.io/not-ready", "NoSchedule")]
                else:
                    want = [("node.kubernetes.io/unreachable", "NoSchedule"),
                            ("node.kubernetes.io/unreachable", "NoExecute")]
            if (node.get("spec") or {}).get("unschedulable"):
                want.append(("node.kubernetes.io/unschedulable", "NoSchedule"))
            managed = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                       "node.kubernetes.io/unschedulable"}
            taints = (node.get("spec") or {}).get("taints") or []
            have = [(t.get("key"), t.get("effect")) for t in taints if t.get("key") in managed]
            if sorted(have) != sorted(want):
                keep = [t for t in taints if t.get("key") not in managed]
                for k, e in want:
                    old = next((t for t in taints if t.get("key") == k and t.get("effect") == e), None)
                    t = old or {"key": k, "effect": e}
                    if e == "NoExecute" and "timeAdded" not in t:
                        t["timeAdded"] = C.rfc3339(now)
                    keep.append(t)
                if keep:
                    node.setdefault("spec", {})["taints"] = keep
                else:
                    node.setdefault("spec", {}).pop("taints", None)
                changed = True
            if changed:
                md["resourceVersion"] = self.next_rv()
            # MarkPodsNotReady for pods on nodes that are not Ready
            if rs in ("False", "Unknown"):
                for pod in self.store["core/pods"].values():
                    if (pod.get("spec") or {}).get("nodeName") != name:
                        continue
                    pconds = (pod.get("status") or {}).get("conditions") or []
                    for c in pconds:
                        if c.get("type") == "Ready" and c.get("status") != "False":
                            c["status"] = "False"
                            c["lastTransitionTime"] = C.rfc3339(now)
                            pod["metadata"]["resourceVersion"] = self.next_rv()

    @staticmethod
    def _unknown_cond(ctype, msg, hb, now):
        return {"type": ctype, "status": "Unknown", "reason": "NodeStatusUnknown", "message": msg,
                "lastHeartbeatTime": hb, "lastTransitionTime": C.rfc3339(now)}

    def _namespace_controller(self):
        for key, nsobj in list(self.store["core/namespaces"].items()):
            if (nsobj.get("status") or {}).get("phase") != "Terminating":
                continue
            name = nsobj["metadata"]["name"]
            remaining = 0
            for r in RESOURCES:
                if not r.namespaced:
                    continue
                for okey, o in list(self.objs(r).items()):
                    if o["metadata"].get("namespace") != name:
                        continue
                    remaining += 1
                    if r.kind == "Pod":
                        if not o["metadata"].get("deletionTimestamp"):
                            try:
                                self.delete(r, name, o["metadata"]["name"], {})
                            except ApiStatus:
                                pass
                    elif o["metadata"].get("finalizers"):
                        if not o["metadata"].get("deletionTimestamp"):
                            o["metadata"]["deletionTimestamp"] = C.rfc3339()
                            o["metadata"]["resourceVersion"] = self.next_rv()
                    else:
                        self._remove(r, okey, o, "Background")
            if remaining == 0:
                self.store["core/namespaces"].pop(key, None)
                self.next_rv()

    def gc(self):
        uids = set()
        for r in RESOURCES:
            for o in self.objs(r).values():
                uids.add(o["metadata"].get("uid"))
        for _round in range(5):
            removed = False
            for r in RESOURCES:
                for key, o in list(self.objs(r).items()):
                    refs = o["metadata"].get("ownerReferences") or []
                    if refs and not any(x.get("uid") in uids for x in refs):
                        if r.kind == "Pod" and (o.get("spec") or {}).get("nodeName") and \
                                (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and \
                                not (o["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror"):
                            if not o["metadata"].get("deletionTimestamp"):
                                self.delete(r, o["metadata"]["namespace"], o["metadata"]["name"], {})
                            continue
                        self.objs(r).pop(key, None)
                        self.next_rv()
                        uids.discard(o["metadata"].get("uid"))
                        removed = True
            if not removed:
                break

    def _pod_gc(self):
        nodes = {n["metadata"]["name"] for n in self.store["core/nodes"].values()}
        now = time.time()
        for key, pod in list(self.store["core/pods"].items()):
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or node in nodes:
                self.orphan_seen.pop(pod["metadata"].get("uid"), None)
                continue
            first = self.orphan_seen.setdefault(pod["metadata"].get("uid"), now)
            if now - first >= self.opts.pod_gc_quarantine:
                self.store["core/pods"].pop(key, None)
                self.orphan_seen.pop(pod["metadata"].get("uid"), None)
                self.next_rv()

    def _bootstrap_signer(self):
        cm = self.store["core/configmaps"].get(_k("kube-public", "cluster-info"))
        secrets = self.store["core/secrets"]
        now = C.utcnow()
        valid = {}
        for key, sec in list(secrets.items()):
            if not key.startswith("kube-system/bootstrap-token-") or sec.get("type") != "bootstrap.kubernetes.io/token":
                continue
            data = _secret_data(sec)
            exp = C.parse_time(data.get("expiration"))
            if exp is not None and exp < now:
                # tokencleaner
                secrets.pop(key, None)
                self.next_rv()
                continue
            if data.get("usage-bootstrap-signing") == "true" and data.get("token-id") and data.get("token-secret"):
                valid[data["token-id"]] = data["token-secret"]
        if cm is None:
            return
        data = cm.setdefault("data", {})
        content = data.get("kubeconfig") or ""
        want = {"jws-kubeconfig-" + tid: C.jws_detached(content, tid, sec) for tid, sec in valid.items()}
        have = {k: v for k, v in data.items() if k.startswith("jws-kubeconfig-")}
        if want != have:
            for k in have:
                data.pop(k, None)
            data.update(want)
            cm["metadata"]["resourceVersion"] = self.next_rv()

    def _pdb_controller(self):
        for pdb in self.store["policy/poddisruptionbudgets"].values():
            st = self.pdb_status(pdb)
            old = pdb.get("status") or {}
            cur = {k: old.get(k) for k in st}
            if cur != st:
                cond = {"type": "DisruptionAllowed", "status": "True" if st["disruptionsAllowed"] > 0 else "False",
                        "reason": "SufficientPods" if st["disruptionsAllowed"] > 0 else "InsufficientPods",
                        "message": "", "observedGeneration": st["observedGeneration"],
                        "lastTransitionTime": C.rfc3339()}
                old_cond = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
                if old_cond and old_cond.get("status") == cond["status"]:
                    cond["lastTransitionTime"] = old_cond.get("lastTransitionTime")
                new = dict(old)
                new.update(st)
                new["conditions"] = [cond]
                pdb["status"] = new
                pdb["metadata"]["resourceVersion"] = self.next_rv()

    def _root_ca_publisher(self):
        ca = self.opts.client_ca_file
        if not ca:
            return
        pem = C.read_text(C.P(ca))
        if not pem:
            return
        for nsobj in self.store["core/namespaces"].values():
            if (nsobj.get("status") or {}).get("phase") != "Active":
                continue
            ns = nsobj["metadata"]["name"]
            cm = self.store["core/configmaps"].get(_k(ns, "kube-root-ca.crt"))
            if cm is None:
                self.create(BY_KEY["core/configmaps"], ns, {
                    "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                 "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used "
                                                 "to verify the kube-apiserver when using internal endpoints such as "
                                                 "the internal service IP or kubernetes.default.svc. No other usage "
                                                 "is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": pem}}, internal=True)
            elif (cm.get("data") or {}).get("ca.crt") != pem:
                cm["data"] = {"ca.crt": pem}
                cm["metadata"]["resourceVersion"] = self.next_rv()

    def _scheduler(self):
        nodes = list(self.store["core/nodes"].values())
        for pod in self.store["core/pods"].values():
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp") or spec.get("schedulingGates"):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            if (pod.get("status") or {}).get("phase") not in (None, "Pending"):
                continue
            fits, reasons = [], {}
            for n in nodes:
                why = _unfit(pod, n)
                if why:
                    reasons[why] = reasons.get(why, 0) + 1
                else:
                    fits.append(n)
            if fits:
                load = {n["metadata"]["name"]: 0 for n in fits}
                for p in self.store["core/pods"].values():
                    nn = (p.get("spec") or {}).get("nodeName")
                    if nn in load:
                        load[nn] += 1
                target = sorted(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))[0]
                self._bind(pod, target["metadata"]["name"])
            else:
                why = ", ".join("%d %s" % (c, r) for r, c in sorted(reasons.items())) or "no nodes"
                msg = ("0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d Preemption is not "
                       "helpful for scheduling." % (len(nodes), why, len(nodes), len(nodes)))
                if not nodes:
                    msg = "no nodes available to schedule pods"
                st = pod.setdefault("status", {})
                old = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
                if not old or old.get("message") != msg:
                    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg,
                         "lastProbeTime": None, "lastTransitionTime": C.rfc3339()}]
                    pod["metadata"]["resourceVersion"] = self.next_rv()
                    self.event(pod, "Pod", "FailedScheduling", msg, etype="Warning", component="default-scheduler")

    def _csr_controller(self):
        for csr in self.store["certificates.k8s.io/certificatesigningrequests"].values():
            if not (csr.get("status") or {}).get("certificate"):
                self._csr_sign(csr)


def _unfit(pod, node):
    spec, nspec = pod.get("spec") or {}, node.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return "node(s) didn't match Pod's node affinity/selector"
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms") or []
    if terms and not any(selector_matches({"matchExpressions": t.get("matchExpressions") or []}, labels)
                         and all(field_value(node, "metadata.name") in (e.get("values") or [])
                                 for e in t.get("matchFields") or [] if e.get("key") == "metadata.name")
                         for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    tols = spec.get("tolerations") or []
    for t in nspec.get("taints") or []:
        if t.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(tol, t) for tol in tols):
            return "node(s) had untolerated taint {%s: %s}" % (t.get("key"), t.get("value", ""))
    return None


def _tolerates(tol, taint):
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("operator") == "Exists":
        return not tol.get("key") or tol["key"] == taint.get("key")
    return tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or "")


def _qos(spec):
    ctrs = spec.get("containers") or []
    reqs = [((c.get("resources") or {}).get("requests") or {}) if isinstance(c, dict) else {} for c in ctrs]
    lims = [((c.get("resources") or {}).get("limits") or {}) if isinstance(c, dict) else {} for c in ctrs]
    if not any(reqs) and not any(lims):
        return "BestEffort"
    if all(lim.get("cpu") and lim.get("memory") and (not req or req == {k: lim[k] for k in req})
           for req, lim in zip(reqs, lims)):
        return "Guaranteed"
    return "Burstable"


def _pod_update_causes(old, new):
    o, n = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
    for spec in (o, n):
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if isinstance(c, dict):
                c.pop("image", None)
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("terminationGracePeriodSeconds", None)
    ot = o.pop("tolerations", None) or []
    nt = n.pop("tolerations", None) or []
    ok = o == n and all(t in nt for t in ot)
    if ok:
        return []
    return [{"reason": "FieldValueForbidden", "field": "spec", "message":
             "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
             "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
             "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
             "previously negative)"}]


def _secret_data(sec):
    out = {}
    for k, v in (sec.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v).decode()
        except (ValueError, UnicodeDecodeError):
            out[k] = ""
    return out


def _bootstrap_token_valid(sec, tid, tsecret, usage):
    if sec.get("type") != "bootstrap.kubernetes.io/token":
        return False
    data = _secret_data(sec)
    if data.get("token-id") != tid or data.get("token-secret") != tsecret:
        return False
    if data.get("usage-bootstrap-%s" % usage) != "true":
        return False
    exp = C.parse_time(data.get("expiration"))
    if exp is not None and exp < C.utcnow():
        return False
    if sec["metadata"].get("deletionTimestamp"):
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------------
# HTTP layer
# ----------------------------------------------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-apiserver"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *args):  # noqa: D401 - quiet like the real apiserver at default verbosity
        if self.server.api.opts.v >= 2:
            sys.stderr.write("I %s %s\n" % (self.address_string(), fmt % args))

    def _send(self, code, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        api = self.server.api
        raw = b""
        try:
            raw = self._body()
            url = urllib.parse.urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            user = api.authenticate(self.connection.getpeercert() if hasattr(self.connection, "getpeercert")
                                    else None, self.headers.get("Authorization"))
            code, body, ctype = self.route(api, method, path, query, raw, user)
            self._send(code, body, ctype)
        except _Handled:
            return
        except ApiStatus as st:
            self._send(st.code, st.body())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # pragma: no cover
            traceback.print_exc()
            self._send(500, ApiStatus(500, "InternalError", "Internal error occurred: %s" % exc).body())

    # -- routing
    def route(self, api, method, path, query, raw, user):
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            api.authorize(user, "get", None, None, None, None, path)
            return health(api, path, query)
        if path == "/version":
            api.authorize(user, "get", None, None, None, None, path)
            return 200, version_info(api.opts), "application/json"
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            api.authorize(user, "get", None, None, None, None, path)
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        if parts[0] == "api":
            if len(parts) == 1:
                api.authorize(user, "get", None, None, None, None, path)
                addr = "%s:%d" % (api.opts.advertise_address, api.opts.secure_port)
                return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]}, "application/json"
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                api.authorize(user, "get", None, None, None, None, path)
                return 200, {"kind": "APIGroupList", "apiVersion": "v1",
                             "groups": [group_info(g) for g in sorted(GROUPS)]}, "application/json"
            group = parts[1]
            if group not in GROUPS:
                raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
            if len(parts) == 2:
                api.authorize(user, "get", None, None, None, None, path)
                return 200, dict(group_info(group), kind="APIGroup", apiVersion="v1"), "application/json"
            version, rest = parts[2], parts[3:]
        gv_res = [r for r in RESOURCES if r.group == group and r.version == version]
        if not gv_res:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        if not rest:
            api.authorize(user, "get", None, None, None, None, path)
            return 200, resource_list(group, version), "application/json"
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_GVP and \
                BY_GVP[(group, version, rest[2])].namespaced:
            ns, rest = rest[1], rest[2:]
        if len(rest) > 3 or (group, version, rest[0]) not in BY_GVP:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        res = BY_GVP[(group, version, rest[0])]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in res.subs:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        if res.namespaced is False and ns:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        if api.opts.fault_etcd():
            raise ApiStatus(504, "Timeout", "Timeout: request did not complete within requested timeout - context "
                            "deadline exceeded", {})
        verb = {"GET": "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[method]
        api.authorize(user, verb, res, ns, name, sub, path)
        dry = query.get("dryRun") == "All"
        if dry is False and "dryRun" in query and query["dryRun"] not in ("", "All"):
            raise bad_request('Invalid dryRun value: %s' % json.dumps(query["dryRun"]))
        ctype = self.headers.get("Content-Type", "application/json")

        def body():
            if not raw:
                return {}
            try:
                return json.loads(raw)
            except ValueError:
                if "yaml" in ctype:
                    try:
                        return C.yaml_load(raw.decode())
                    except ValueError:
                        pass
                raise bad_request("the body of the request was in an unknown format - accepted media types "
                                  "include: application/json, application/yaml")

        if method == "GET":
            if name is None:
                if verb == "watch":
                    return self.watch(api, res, ns, query)
                return 200, api.list(res, ns, query), "application/json"
            return 200, api.get(res, ns, name), "application/json"
        if method == "POST":
            if name is None:
                if res.namespaced and not ns:
                    raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                    "resource", {})
                return 201, api.create(res, ns, body(), user, dry), "application/json"
            if sub == "eviction":
                return 201, api.evict(ns, name, body(), user, dry), "application/json"
            if sub == "binding":
                return 201, api.bind(ns, name, body(), user, dry), "application/json"
            raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                            "resource", {})
        if method == "PUT":
            if name is None:
                raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                "resource", {})
            code, out = api.replace(res, ns, name, body(), sub, user, dry)
            return code, out, "application/json"
        if method == "PATCH":
            if name is None:
                raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                "resource", {})
            pbody = raw if "apply-patch" in ctype else body()
            code, out = api.patch(res, ns, name, pbody, ctype, sub, user, dry, query.get("force") == "true")
            return code, out, "application/json"
        if method == "DELETE":
            opts = body() or {}
            if "gracePeriodSeconds" in query:
                opts["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
            if "propagationPolicy" in query:
                opts["propagationPolicy"] = query["propagationPolicy"]
            if "orphanDependents" in query:
                opts["orphanDependents"] = query["orphanDependents"] == "true"
            if (opts.get("dryRun") or []) == ["All"]:
                dry = True
            if name is None:
                return 200, api.deletecollection(res, ns, query, opts, user, dry), "application/json"
            code, out = api.delete(res, ns, name, opts, user, dry)
            return code, out, "application/json"
        raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})

    def watch(self, api, res, ns, query):
        """Watch: optional synthetic ADDED events for the current state, then the change journal, streamed as
        newline-delimited JSON until timeoutSeconds."""
        timeout = min(float(query.get("timeoutSeconds") or 300), 1800)
        lsel = parse_label_selector(query.get("labelSelector", ""))
        fsel = parse_field_selector(res, query.get("fieldSelector", ""))
        since = query.get("resourceVersion") or ""

        def match(o):
            md = o["metadata"]
            if res.namespaced and ns and md.get("namespace") != ns:
                return False
            return labels_match(lsel, md.get("labels")) and fields_match(fsel, o)

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

        def emit(kind, obj):
            line = (json.dumps({"type": kind, "object": api.with_kind(res, obj)}) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        try:
            with api.lock:
                seq = api.journal_seq
                initial = []
                if since in ("", "0"):
                    initial = [copy.deepcopy(o) for o in api.objs(res).values() if match(o)]
                else:
                    initial = [(kind, o) for (_seq, kind, key, o) in api.journal
                               if key == res.key and int(o["metadata"].get("resourceVersion") or 0) > int(since)
                               and match(o)]
            for item in initial:
                if isinstance(item, tuple):
                    emit(*item)
                else:
                    emit("ADDED", item)
            deadline = time.time() + timeout
            while time.time() < deadline:
                with api.lock:
                    api.journal_cv.wait(timeout=min(1.0, max(0.0, deadline - time.time())))
                    new = [(k, o) for (s, k, key, o) in api.journal if s > seq and key == res.key and match(o)]
                    seq = api.journal_seq
                for kind, o in new:
                    emit(kind, o)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        self.close_connection = True
        raise _Handled()


class _Handled(Exception):
    """Raised by watch() after it has written its own (streamed) response."""


def group_info(group):
    versions = [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in GROUPS[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def resource_list(group, version):
    out = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        out.append(r.discovery())
        for sub, spec in sorted(r.subs.items()):
            d = {"name": "%s/%s" % (r.plural, sub), "singularName": "", "namespaced": r.namespaced,
                 "kind": spec[0], "verbs": spec[1]}
            if len(spec) > 2:
                d["group"], d["version"] = spec[2], spec[3]
            out.append(d)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (group, version) if group
            else version, "resources": out}


def version_info(opts):
    v = opts.version
    m = re.match(r"v(\d+)\.(\d+)", v)
    return {"major": m.group(1) if m else "1", "minor": m.group(2) if m else "31", "gitVersion": v,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "standin (python %s)" % sys.version.split()[0],
            "compiler": "gc", "platform": "linux/%s" % C.go_arch()}


def health(api, path, query):
    kind = path.strip("/").split("/")[0]
    checks = [c for c in READYZ_CHECKS if kind == "readyz" or c not in LIVEZ_EXCLUDED]
    failing = set()
    if api.opts.fault_etcd():
        failing |= {"etcd", "etcd-readiness"}
    sub = path.strip("/").split("/", 1)[1] if "/" in path.strip("/") else None
    if sub:
        if sub not in checks:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource", {})
        if sub in failing:
            return 500, "internal server error: etcd client connection not yet established\n", "text/plain; charset=utf-8"
        return 200, "ok", "text/plain; charset=utf-8"
    excluded = set(query.get("exclude", "").split(",")) if query.get("exclude") else set()
    checks = [c for c in checks if c not in excluded]
    bad = [c for c in checks if c in failing]
    if not bad and "verbose" not in query:
        return 200, "ok", "text/plain; charset=utf-8"
    lines = []
    for c in checks:
        lines.append("[-]%s failed: reason withheld" % c if c in bad else "[+]%s ok" % c)
    lines.append("%s check %s" % (kind, "failed" if bad else "passed"))
    return (500 if bad else 200), "\n".join(lines) + "\n", "text/plain; charset=utf-8"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, api, ssl_ctx):
        self.api = api
        self.ssl_ctx = ssl_ctx
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = fam
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------------------------------------------------
# Flags: the same names as the real components. --from-manifests reads them from the kubeadm static Pod manifests.
# ----------------------------------------------------------------------------------------------------------------------


def manifest_flags(path):
    """Flags (--name=value) of the first container's command in a static Pod manifest, as a dict."""
    text = C.read_text(path)
    if text is None:
        return None
    try:
        pod = C.yaml_load(text) or {}
    except ValueError:
        return {}
    ctrs = ((pod.get("spec") or {}).get("containers") or [{}])
    cmd = (ctrs[0].get("command") or []) + (ctrs[0].get("args") or [])
    out = {}
    for a in cmd:
        a = str(a)
        if a.startswith("--"):
            k, eq, v = a[2:].partition("=")
            out[k] = v if eq else "true"
    return out


def build_opts(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API stand-in for lab tests (NOT Kubernetes).")
    p.add_argument("--from-manifests", help="directory with kube-apiserver.yaml, etcd.yaml, "
                   "kube-controller-manager.yaml (kubeadm static Pod manifests) to read flags from")
    p.add_argument("--advertise-address")
    p.add_argument("--bind-address")
    p.add_argument("--secure-port", type=int)
    p.add_argument("--tls-cert-file")
    p.add_argument("--tls-private-key-file")
    p.add_argument("--client-ca-file")
    p.add_argument("--token-auth-file")
    p.add_argument("--anonymous-auth")
    p.add_argument("--data-dir", help="state directory (etcd's --data-dir; state.json lives here)")
    p.add_argument("--node-monitor-grace-period")
    p.add_argument("--cluster-signing-cert-file")
    p.add_argument("--cluster-signing-key-file")
    p.add_argument("--cluster-cidr")
    p.add_argument("--pod-gc-quarantine", type=float)
    p.add_argument("--controller-interval", type=float, default=1.0)
    p.add_argument("--kubernetes-version")
    p.add_argument("--v", type=int, default=0)
    a = p.parse_args(argv)
    flags = {}
    if a.from_manifests:
        d = C.P(a.from_manifests) if not a.from_manifests.startswith(C.root() or "\0") else a.from_manifests
        api_flags = manifest_flags(os.path.join(d, "kube-apiserver.yaml"))
        if api_flags is None:
            raise SystemExit("standin-apiserver: %s/kube-apiserver.yaml not found" % a.from_manifests)
        flags.update(api_flags)
        etcd = manifest_flags(os.path.join(d, "etcd.yaml")) or {}
        if etcd.get("data-dir"):
            flags["data-dir"] = os.path.join(etcd["data-dir"], "standin-apiserver")
        kcm = manifest_flags(os.path.join(d, "kube-controller-manager.yaml")) or {}
        for k in ("node-monitor-grace-period", "cluster-signing-cert-file", "cluster-signing-key-file",
                  "cluster-cidr"):
            if k in kcm:
                flags[k] = kcm[k]
        if kcm.get("allocate-node-cidrs", "false") != "true":
            flags.pop("cluster-cidr", None)
        text = C.read_text(os.path.join(d, "kube-apiserver.yaml")) or ""
        m = re.search(r"image:\s*\S*kube-apiserver:(v[0-9][^\s\"']*)", text)
        if m:
            flags["kubernetes-version"] = m.group(1)
    for k, v in vars(a).items():
        if v is not None and k not in ("from_manifests", "controller_interval", "v"):
            flags[k.replace("_", "-")] = v
    cfg = C.load_config()

    class Options:
        pass

    o = Options()
    o.v = a.v
    o.controller_interval = a.controller_interval
    o.advertise_address = flags.get("advertise-address") or "127.0.0.1"
    o.bind_address = flags.get("bind-address") or "0.0.0.0"
    o.secure_port = int(flags.get("secure-port") or 6443)
    o.tls_cert_file = C.P(flags.get("tls-cert-file") or "/etc/kubernetes/pki/apiserver.crt")
    o.tls_private_key_file = C.P(flags.get("tls-private-key-file") or "/etc/kubernetes/pki/apiserver.key")
    o.client_ca_file = flags.get("client-ca-file") or "/etc/kubernetes/pki/ca.crt"
    o.token_auth_file = flags.get("token-auth-file")
    o.anonymous_auth = str(flags.get("anonymous-auth", "true")).lower() != "false"
    o.data_dir = C.P(flags.get("data-dir") or "/var/lib/etcd/standin-apiserver")
    grace = cfg.get("node_monitor_grace_period") or flags.get("node-monitor-grace-period") or "40s"
    o.node_monitor_grace_period = C.parse_duration(grace)
    o.signing_cert_file = flags.get("cluster-signing-cert-file") or o.client_ca_file
    o.signing_key_file = flags.get("cluster-signing-key-file") or "/etc/kubernetes/pki/ca.key"
    o.cluster_cidr = flags.get("cluster-cidr")
    o.pod_gc_quarantine = float(flags.get("pod-gc-quarantine") or cfg.get("pod_eviction_orphan_quarantine") or 40)
    o.version = flags.get("kubernetes-version") or cfg.get("kubernetes_version") or "v1.31.4"
    o.fault_etcd = lambda: C.fault("apiserver-etcd-down")
    return o


def main(argv=None):
    opts = build_opts(argv)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(opts.tls_cert_file, opts.tls_private_key_file)
    ca = C.P(opts.client_ca_file)
    if os.path.exists(ca):
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    os.makedirs(opts.data_dir, exist_ok=True)
    api = Api(opts)
    try:
        srv = Server((opts.bind_address, opts.secure_port), api, ctx)
    except OSError as exc:
        C.klog("E", "run.go:72", "command failed", err="failed to create listener: failed to listen on %s:%d: listen "
               "tcp %s:%d: bind: %s" % (opts.bind_address, opts.secure_port, opts.bind_address, opts.secure_port,
                                        exc.strerror))
        return 1
    stop = threading.Event()

    def loop():
        while not stop.wait(opts.controller_interval):
            api.controllers()

    threading.Thread(target=loop, name="controllers", daemon=True).start()

    def term(*_):
        stop.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    C.klog("I", "secure_serving.go:213",
           "Serving securely on %s:%d (%s)" % (opts.bind_address, opts.secure_port, C.STANDIN_MARK))
    srv.serve_forever(poll_interval=0.2)
    with api.lock:
        if api.dirty:
            api.persist()
    return 0


if __name__ == "__main__":
    sys.exit(main())
