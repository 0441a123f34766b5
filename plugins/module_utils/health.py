# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster health report, pure: parsed inputs in, findings, an overall status and a table out. No I/O.

Every check gives findings ``{area, subject, severity, message}``. Severities:

* ``failed``: the cluster's core does not work: the API does not answer or a ``/readyz`` check fails, etcd is not
  healthy, an inventory node has no Node or its Node is not Ready, a certificate has expired, a node is
  unreachable, a node's membership needs a repair (its kubelet stopped, its kubelet.conf gone, ...), a fabric
  address is missing.
* ``degraded``: the cluster works with a fault: a pod not Running or not Ready (completed pods are fine), a
  Deployment or DaemonSet not fully ready, an enabled add-on whose Helm release is missing or not deployed, fewer
  allocatable GPUs than the inventory expects, a cordoned Node, a Node under memory, disk or PID pressure, a Node
  whose InternalIP is not its fabric address, a Node the inventory does not know, a LoadBalancer Service without an
  address, a certificate expiring within the warning days, a Longhorn node not Ready or a volume not healthy, a
  recorded RoCE or NCCL verdict that failed, a fabric port with the wrong MTU or an unpersisted configuration,
  stale CNI state on a node.
* ``unknown``: not checked (an add-on the inventory turns off, a verdict nobody recorded, an input that could not be
  read). Shown in the table, never counted against the cluster, never invented as ok.
* ``ok``.

The overall status is ``failed`` when any finding failed, else ``degraded`` when any is degraded, else ``healthy``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons

SEVERITIES = ("ok", "unknown", "degraded", "failed")
STATUS_OF = {"ok": "healthy", "unknown": "healthy", "degraded": "degraded", "failed": "failed"}
EXIT_CODES = {"healthy": 0, "degraded": 1, "failed": 2}
GPU_RESOURCE = "nvidia.com/gpu"
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
AREAS = ("api", "etcd", "nodes", "pods", "workloads", "addons", "services", "longhorn", "certificates", "fabric",
         "nccl")
_READYZ_RE = re.compile(r"^\[([+-])\](\S+?)\s+(ok|failed.*)$")


def finding(area, subject, severity, message):
    if severity not in SEVERITIES:
        raise ValueError("unknown severity %r" % (severity,))
    return {"area": area, "subject": subject, "severity": severity, "message": message}


# --- API and etcd -------------------------------------------------------------------------------------------------

def parse_readyz(text):
    """``{"checks": [{"name", "ok", "detail"}], "passed": bool or None}`` from ``/readyz?verbose``.

    Also reads the text kubectl prints when the endpoint fails (``Error from server ...("[+]ping ok\\n[-]etcd
    failed: reason withheld\\n...")``): there the lines are joined by an escaped newline."""
    text = text or ""
    if "\\n" in text and not re.search(r"^\[[+-]\]", text, re.MULTILINE):
        text = text.replace("\\n", "\n")
    checks, passed = [], None
    for raw in text.splitlines():
        line = raw.strip().strip('"(')
        if line.startswith("Error from server") and "(\"" in line:
            line = line.split("(\"", 1)[1]
        match = _READYZ_RE.match(line)
        if match:
            checks.append({"name": match.group(2), "ok": match.group(1) == "+",
                           "detail": "" if match.group(3) == "ok" else match.group(3)})
        if "readyz check passed" in line:
            passed = True
        elif "readyz check failed" in line:
            passed = False
    return {"checks": checks, "passed": passed}


def judge_api(readyz_text, error=None):
    """Findings for areas ``api`` and ``etcd`` from ``/readyz?verbose`` (None with ``error`` when it did not
    answer at all)."""
    parsed = parse_readyz(readyz_text)
    if not parsed["checks"] and parsed["passed"] is None:
        reason = error or "no /readyz answer"
        return [finding("api", "/readyz", "failed", "the API did not answer: %s" % reason),
                finding("etcd", "etcd", "unknown", "not checked: the API did not answer")]
    found = []
    etcd = [c for c in parsed["checks"] if c["name"].startswith("etcd")]
    others = [c for c in parsed["checks"] if not c["name"].startswith("etcd")]
    bad = [c for c in others if not c["ok"]]
    for check in bad:
        found.append(finding("api", check["name"], "failed", "/readyz check %s" % (check["detail"] or "failed")))
    if not bad:
        if parsed["passed"] is False and all(c["ok"] for c in etcd):
            found.append(finding("api", "/readyz", "failed", "readyz check failed"))
        else:
            found.append(finding("api", "/readyz", "ok", "%d checks ok" % len(others)))
    if not etcd:
        found.append(finding("etcd", "etcd", "unknown", "not checked: /readyz lists no etcd check"))
    for check in etcd:
        if check["ok"]:
            found.append(finding("etcd", check["name"], "ok", "healthy (/readyz)"))
        else:
            found.append(finding("etcd", check["name"], "failed", "/readyz check %s" % (check["detail"] or "failed")))
    return found


# --- Nodes ---------------------------------------------------------------------------------------------------------

def _conditions(obj):
    return dict((c.get("type"), c) for c in ((obj.get("status") or {}).get("conditions") or []))


def _int(value):
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _internal_ip(node):
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address")
    return None


def judge_nodes(nodes, expected):
    """Findings (area ``nodes``) for every Node and every inventory node.

    ``nodes``: the items of a Node list; ``expected``: ``[{"name", "gpus", "address"}]`` from the inventory
    (``gpus``: allocatable GPUs expected, ``address``: the fabric address the Node's InternalIP must be, or empty)."""
    by_name = dict(((n.get("metadata") or {}).get("name"), n) for n in nodes or [])
    expected = list(expected or [])
    wanted = dict((e["name"], e) for e in expected)
    found = []
    versions = {}
    for name in [e["name"] for e in expected] + sorted(set(by_name) - set(wanted)):
        node = by_name.get(name)
        if node is None:
            found.append(finding("nodes", name, "failed", "no Node in the API"))
            continue
        status = node.get("status") or {}
        conditions = _conditions(node)
        ready = conditions.get("Ready") or {}
        kubelet = (status.get("nodeInfo") or {}).get("kubeletVersion") or "?"
        versions[name] = kubelet
        gpus = _int((status.get("allocatable") or {}).get(GPU_RESOURCE, 0))
        want = wanted.get(name) or {}
        if ready.get("status") != "True":
            detail = ": ".join(str(p) for p in (ready.get("reason"), ready.get("message")) if p)
            found.append(finding("nodes", name, "failed", "Ready=%s%s" % (
                ready.get("status") or "absent", " (%s)" % detail if detail else "")))
            continue
        problems = []
        if name not in wanted:
            problems.append("not in the inventory")
        if (node.get("spec") or {}).get("unschedulable"):
            problems.append("cordoned")
        for pressure in PRESSURES:
            if (conditions.get(pressure) or {}).get("status") == "True":
                problems.append(pressure)
        if gpus < _int(want.get("gpus")):
            problems.append("GPUs allocatable %d of %d expected" % (gpus, _int(want.get("gpus"))))
        address = str(want.get("address") or "").split("/", 1)[0]
        if address and _internal_ip(node) != address:
            problems.append("InternalIP %s, not its fabric address %s" % (_internal_ip(node) or "none", address))
        line = "Ready, kubelet %s, GPUs %d" % (kubelet, gpus)
        if problems:
            found.append(finding("nodes", name, "degraded", "%s; %s" % (line, "; ".join(problems))))
        else:
            found.append(finding("nodes", name, "ok", line))
    if len(set(versions.values())) > 1:
        found.append(finding("nodes", "kubelet versions", "degraded", "differ: %s" % ", ".join(
            "%s %s" % item for item in sorted(versions.items()))))
    return found


# --- Pods and workloads --------------------------------------------------------------------------------------------

def _pod_problem(pod):
    """Why a pod is not Running and Ready (None when it is, or when it completed)."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Unknown"
    if phase == "Succeeded":
        return None
    reasons = []
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = container.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason and reason != "Completed" and reason not in reasons:
                reasons.append(reason)
    if phase != "Running":
        return "%s%s" % (phase, " (%s)" % ", ".join(reasons) if reasons else "")
    if (_conditions(pod).get("Ready") or {}).get("status") != "True":
        return "not Ready%s" % (" (%s)" % ", ".join(reasons) if reasons else "")
    return None


def judge_pods(pods):
    """Findings (area ``pods``), one per namespace: ok with the count, or degraded naming each pod that is not
    Running and Ready (``name: Pending (ImagePullBackOff)``)."""
    by_namespace = {}
    for pod in pods or []:
        meta = pod.get("metadata") or {}
        by_namespace.setdefault(meta.get("namespace") or "", []).append(pod)
    found = []
    for namespace in sorted(by_namespace):
        bad = []
        for pod in sorted(by_namespace[namespace], key=lambda p: (p.get("metadata") or {}).get("name") or ""):
            problem = _pod_problem(pod)
            if problem:
                bad.append("%s: %s" % (pod["metadata"].get("name"), problem))
        total = len(by_namespace[namespace])
        if bad:
            found.append(finding("pods", namespace, "degraded", "%d of %d pods not Running and Ready: %s" % (
                len(bad), total, "; ".join(bad))))
        else:
            found.append(finding("pods", namespace, "ok", "%d pods Running and Ready (or completed)" % total))
    return found


def workload_problems(workloads, namespaces=None):
    """``["DaemonSet ns/name: 1/2 pods ready", ...]`` for the Deployments and DaemonSets (in ``namespaces`` when
    given) that are not fully ready, as the add-on roles judge them."""
    lines = []
    for obj in workloads or []:
        meta = obj.get("metadata") or {}
        if namespaces is not None and meta.get("namespace") not in namespaces:
            continue
        entry = {"kind": obj.get("kind"), "name": meta.get("name"), "namespace": meta.get("namespace")}
        problem = addons.ready_problem(entry, obj)
        if problem:
            lines.append("%s: %s" % (addons.describe(entry), problem))
    return sorted(lines)


def judge_workloads(workloads, skip_namespaces=()):
    """Findings (area ``workloads``) per namespace for the Deployments and DaemonSets outside the add-ons'
    namespaces (those are judged with their add-on)."""
    by_namespace = {}
    for obj in workloads or []:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        if namespace not in skip_namespaces:
            by_namespace.setdefault(namespace, []).append(obj)
    found = []
    for namespace in sorted(by_namespace):
        bad = workload_problems(by_namespace[namespace])
        if bad:
            found.append(finding("workloads", namespace, "degraded", "; ".join(bad)))
        else:
            found.append(finding("workloads", namespace, "ok", "%d Deployments and DaemonSets ready"
                                 % len(by_namespace[namespace])))
    return found


# --- Add-ons -------------------------------------------------------------------------------------------------------

def judge_addons(expected, releases, workloads):
    """Findings (area ``addons``), one per add-on of the inventory.

    ``expected``: ``[{"name", "enabled", "release_name", "release_namespace", "namespaces"}]``; ``releases``:
    ``{(namespace, name): release}`` as addons.latest_release decodes them (None: Helm's Secrets could not be read);
    ``workloads``: every Deployment and DaemonSet."""
    found = []
    for addon in expected or []:
        name = addon["name"]
        if not addon.get("enabled", True):
            found.append(finding("addons", name, "unknown", "not checked: turned off in the inventory"))
            continue
        problems, facts = [], []
        if addon.get("release_name"):
            key = (addon.get("release_namespace"), addon["release_name"])
            if releases is None:
                problems.append("Helm release %s/%s not read" % key)
            else:
                release = releases.get(key)
                if release is None:
                    problems.append("Helm release %s/%s not installed" % key)
                elif release.get("status") != "deployed":
                    problems.append("Helm release %s is %s" % (key[1], release.get("status")))
                else:
                    facts.append("release %s %s deployed" % (key[1], release.get("chart_version")))
        namespaces = addon.get("namespaces") or []
        if namespaces:
            count = len([w for w in workloads or [] if (w.get("metadata") or {}).get("namespace") in namespaces])
            problems.extend(workload_problems(workloads, namespaces))
            facts.append("%d Deployments and DaemonSets" % count)
        if problems:
            found.append(finding("addons", name, "degraded", "; ".join(problems)))
        else:
            found.append(finding("addons", name, "ok", ", ".join(facts) or "present"))
    return found


# --- Services, Longhorn --------------------------------------------------------------------------------------------

def _namespaced_name(obj):
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def judge_services(services):
    """Findings (area ``services``): each LoadBalancer Service with its address, or degraded without one."""
    found = []
    for svc in sorted(services or [], key=_namespaced_name):
        if (svc.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        meta = svc.get("metadata") or {}
        subject = "%s/%s" % (meta.get("namespace"), meta.get("name"))
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        if addresses:
            found.append(finding("services", subject, "ok", "LoadBalancer %s" % ", ".join(addresses)))
        else:
            found.append(finding("services", subject, "degraded", "LoadBalancer without an address (pending)"))
    return found


def judge_longhorn(nodes, volumes, expected=True):
    """Findings (area ``longhorn``) from Longhorn's own ``nodes.longhorn.io`` and ``volumes.longhorn.io``; None
    (not readable, Longhorn's CRDs absent) is not checked when Longhorn is ``expected``, nothing otherwise."""
    if nodes is None and volumes is None:
        return [finding("longhorn", "longhorn", "unknown", "not checked: Longhorn's objects could not be read")] \
            if expected else []
    found = []
    for node in sorted(nodes or [], key=lambda n: n["metadata"].get("name") or ""):
        name = node["metadata"].get("name")
        conditions = _conditions(node)
        bad = [t for t in ("Ready", "Schedulable") if (conditions.get(t) or {}).get("status") != "True"]
        if bad:
            detail = (conditions.get(bad[0]) or {}).get("message") or (conditions.get(bad[0]) or {}).get("reason")
            found.append(finding("longhorn", "node %s" % name, "degraded", "not %s%s" % (
                " and ".join(bad), ": %s" % detail if detail else "")))
        else:
            found.append(finding("longhorn", "node %s" % name, "ok", "Ready and Schedulable"))
    for volume in sorted(volumes or [], key=lambda v: v["metadata"].get("name") or ""):
        name = volume["metadata"].get("name")
        status = volume.get("status") or {}
        state, robustness = status.get("state") or "unknown", status.get("robustness") or "unknown"
        if state == "attached" and robustness != "healthy":
            found.append(finding("longhorn", "volume %s" % name, "degraded", "%s, %s" % (state, robustness)))
        else:
            found.append(finding("longhorn", "volume %s" % name, "ok", "%s, %s" % (state, robustness)))
    return found


# --- Certificates --------------------------------------------------------------------------------------------------

def parse_time(text):
    """A UTC datetime from RFC 3339 as Kubernetes writes it (``2026-12-07T10:00:00Z``); None when unreadable."""
    text = str(text or "").strip()
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]00:00)$", text)
    if not match:
        return None
    return datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")


def judge_certificates(info, now, warning_days, error=None):
    """Findings (area ``certificates``) from ``kubeadm certs check-expiration -o json`` (kind
    CertificateExpirationInfo: ``certificates`` and ``certificateAuthorities``, each with ``name``,
    ``expirationDate``, ``missing``, ``externallyManaged``). Expired: failed; within ``warning_days``: degraded;
    missing: degraded. ``now``: naive UTC datetime."""
    if info is None:
        return [finding("certificates", "kubeadm", "unknown", "not checked: %s" % (error or "no data"))]
    found, fine = [], []
    entries = [(c, "certificate") for c in info.get("certificates") or []]
    entries += [(c, "CA") for c in info.get("certificateAuthorities") or []]
    for cert, what in entries:
        name = "%s %s" % (what, cert.get("name"))
        if cert.get("missing"):
            found.append(finding("certificates", name, "degraded", "missing"))
            continue
        expires = parse_time(cert.get("expirationDate"))
        if expires is None:
            found.append(finding("certificates", name, "unknown", "unreadable expiration date %r"
                                 % cert.get("expirationDate")))
            continue
        days = (expires - now).total_seconds() / 86400.0
        when = expires.strftime("%Y-%m-%d")
        if days <= 0:
            found.append(finding("certificates", name, "failed", "expired on %s" % when))
        elif days < warning_days:
            found.append(finding("certificates", name, "degraded", "expires on %s, in %d days (warning below %d)"
                                 % (when, int(days), warning_days)))
        else:
            fine.append((days, name, when))
    if fine:
        days, name, when = min(fine)
        found.append(finding("certificates", "kubeadm", "ok", "%d valid; the first to expire: %s on %s, in %d days"
                             % (len(fine), name, when, int(days))))
    return found


# --- Fabric, RoCE and NCCL (recorded verdicts only) ----------------------------------------------------------------

def judge_roce(verdict):
    """Finding (area ``fabric``) from the last recorded roce_check result (its ``failures`` and ``devices``); the
    collection keeps none today, so None says so instead of inventing a result."""
    if not verdict:
        return [finding("fabric", "RoCE", "unknown", "no verdict recorded (run playbooks/validate-fabric.yml)")]
    failures = verdict.get("failures") or []
    devices = [d.get("name") for d in verdict.get("devices") or [] if d.get("name")]
    if failures or verdict.get("failed"):
        return [finding("fabric", "RoCE", "degraded", "last verdict failed: %s" % (
            "; ".join(failures) or verdict.get("msg") or "no reason recorded"))]
    return [finding("fabric", "RoCE", "ok", "last verdict passed (%s)" % (", ".join(devices) or "no device named"))]


def judge_nccl(verdict, source=None):
    """Finding (area ``nccl``) from the newest saved nccl_test result (the JSON the nccl role keeps on the
    controller); None: no verdict recorded."""
    if not verdict:
        return [finding("nccl", "nccl-tests", "unknown", "no verdict recorded (run playbooks/validate-fabric.yml)")]
    when = verdict.get("started") or source or "an unknown time"
    busbw = verdict.get("avg_busbw_gbs")
    busbw_text = "avg busbw %.2f GB/s" % busbw if isinstance(busbw, (int, float)) else "no bandwidth recorded"
    if verdict.get("passed"):
        return [finding("nccl", "nccl-tests", "ok", "last verdict PASSED, %s (%s)" % (busbw_text, when))]
    failures = verdict.get("failures") or ([verdict["msg"]] if verdict.get("msg") else [])
    return [finding("nccl", "nccl-tests", "degraded", "last verdict FAILED, %s (%s)%s" % (
        busbw_text, when, ": %s" % "; ".join(failures) if failures else ""))]


# --- Each node's own judges (what start-cluster.yml would repair) -------------------------------------------------

# Membership repairs that leave a node out of the cluster until they run (restart_kubelet included: a stopped kubelet
# makes the Node NotReady once the grace period ends, and the report should not wait for the API to notice).
_MEMBERSHIP_SEVERITY = {"none": "ok", "restart_kubelet": "failed", "join": "failed", "reset_and_join": "failed",
                        "init": "failed", "reset": "failed"}


def _fabric_severity(action):
    """A fabric address that is missing fails (the Nodes' InternalIPs and the API are on the fabric); anything
    else fabric_ip would do (MTU, a duplicate address, the persisted configuration) leaves the node working."""
    return "failed" if action.startswith("add ") else "degraded"


def judge_node_checks(checks):
    """Findings from each node's own read-only judges, run under check mode by check-cluster.yml: the membership
    plan of kubeadm_node (area ``nodes``), fabric_ip's planned actions (area ``fabric``) and cni_cleanup's stale
    state (area ``pods``), and roce_check's verdict now (area ``fabric``, only when it ran). Each check is
    ``{name, unreachable, membership, fabric, cni, roce}``; a judge that did not run (None) is not checked, never
    ok."""
    found = []
    for check in checks or []:
        name = check.get("name") or "?"
        if check.get("unreachable"):
            found.append(finding("nodes", name, "failed", "unreachable over SSH: %s" % (
                check.get("unreachable_msg") or "no reason given")))
            continue
        plan = check.get("membership")
        if not plan:
            found.append(finding("nodes", "%s membership" % name, "unknown", "not checked"))
        elif plan.get("failed") or plan.get("action") not in _MEMBERSHIP_SEVERITY:
            found.append(finding("nodes", "%s membership" % name, "failed", "the membership check failed: %s" % (
                plan.get("msg") or "no reason given")))
        else:
            severity = _MEMBERSHIP_SEVERITY[plan["action"]]
            reasons = "; ".join(plan.get("reasons") or []) or "no reason given"
            message = reasons if severity == "ok" else "start-cluster.yml would %s: %s" % (
                plan["action"].replace("_", " "), reasons)
            found.append(finding("nodes", "%s membership" % name, severity, message))
        fabric = check.get("fabric")
        if not fabric:
            found.append(finding("fabric", "%s addresses" % name, "unknown", "not checked"))
        elif fabric.get("failed") or ("actions" not in fabric and fabric.get("msg")):
            found.append(finding("fabric", "%s addresses" % name, "failed", fabric.get("msg") or "no reason given"))
        else:
            actions = fabric.get("actions") or []
            for action in actions:
                found.append(finding("fabric", "%s addresses" % name, _fabric_severity(action),
                                     "start-cluster.yml would %s" % action))
            if not actions:
                ports = ["%s %s MTU %s" % (p.get("name"), p.get("address"), p.get("mtu"))
                         for p in fabric.get("ports") or [] if p.get("name")]
                found.append(finding("fabric", "%s addresses" % name, "ok", ", ".join(ports) or "no port"))
        if check.get("roce"):
            found += [dict(item, subject="%s RoCE" % name, message=item["message"].replace("last verdict", "now"))
                      for item in judge_roce(check["roce"])]
        cni = check.get("cni")
        if not cni:
            found.append(finding("pods", "%s CNI state" % name, "unknown", "not checked"))
            continue
        removed = cni.get("removed") or {}
        stale = [item for kind in ("netns", "paths", "links") for item in removed.get(kind) or []]
        if cni.get("failed") or ("removed" not in cni and cni.get("msg")):
            found.append(finding("pods", "%s CNI state" % name, "degraded", "the CNI check failed: %s" % (
                cni.get("msg") or "no reason given")))
        elif stale:
            found.append(finding("pods", "%s CNI state" % name, "degraded", "%d stale entr%s (new pods may fail "
                                 "to start): %s" % (len(stale), "y" if len(stale) == 1 else "ies", ", ".join(stale))))
        else:
            found.append(finding("pods", "%s CNI state" % name, "ok", "no stale network namespace or state"))
    return found


# --- The report ----------------------------------------------------------------------------------------------------

def overall(findings):
    """healthy / degraded / failed: the worst severity among the findings (unknown counts as nothing)."""
    worst = "ok"
    for item in findings:
        if SEVERITIES.index(item["severity"]) > SEVERITIES.index(worst):
            worst = item["severity"]
    return STATUS_OF[worst]


def counts(findings):
    out = dict((severity, 0) for severity in SEVERITIES)
    for item in findings:
        out[item["severity"]] += 1
    return out


LABELS = {"ok": "ok", "unknown": "not checked", "degraded": "DEGRADED", "failed": "FAILED"}


def table(findings, status, generated=None):
    """The report a person reads at a glance: a headline, then fixed-width lines (area, subject, status, detail),
    problems and unchecked items one per line, ok findings one line per area."""
    tally = counts(findings)
    lines = ["cluster health: %s  (%d failed, %d degraded, %d not checked, %d ok)%s" % (
        status.upper(), tally["failed"], tally["degraded"], tally["unknown"], tally["ok"],
        "  %s" % generated if generated else "")]
    lines.append("%-12s %-28s %-11s %s" % ("AREA", "SUBJECT", "STATUS", "DETAIL"))
    order = [a for a in AREAS if any(f["area"] == a for f in findings)]
    order += sorted(set(f["area"] for f in findings) - set(order))
    for area in order:
        items = [f for f in findings if f["area"] == area]
        for item in sorted((f for f in items if f["severity"] != "ok"),
                           key=lambda f: -SEVERITIES.index(f["severity"])):
            lines.append(_row(area, item["subject"], LABELS[item["severity"]], item["message"]))
        ok = [f for f in items if f["severity"] == "ok"]
        if len(ok) == 1:
            lines.append(_row(area, ok[0]["subject"], "ok", ok[0]["message"]))
        elif ok:
            lines.append(_row(area, "%d ok" % len(ok), "ok", ", ".join(f["subject"] for f in ok)))
    return "\n".join(line.rstrip() for line in lines)


def _row(area, subject, label, message):
    subject = subject if len(subject) <= 28 else subject[:25] + "..."
    return "%-12s %-28s %-11s %s" % (area, subject, label, message)


def report(inputs, now, warning_days=30):
    """The whole report from the parsed inputs (see health_io.gather):

    ``readyz`` (text) and ``readyz_error``; ``nodes``, ``pods``, ``workloads`` (Deployments and DaemonSets),
    ``services`` (lists of objects; None when the API could not list them, with ``objects_error``);
    ``expected_nodes``; ``addons`` and ``releases``; ``longhorn_nodes``, ``longhorn_volumes``, ``longhorn_expected``;
    ``certificates`` and ``certificates_error``; ``node_checks`` (see judge_node_checks); ``roce_verdict``,
    ``nccl_verdict``, ``nccl_source``.

    Returns ``{status, exit_code, counts, findings, failures, degradations, text, generated}``; ``failures`` and
    ``degradations`` are the failed and degraded findings as lines (``area subject: message``)."""
    findings = judge_api(inputs.get("readyz"), inputs.get("readyz_error"))
    if inputs.get("nodes") is None:
        reason = inputs.get("objects_error") or "not read"
        findings.append(finding("nodes", "Nodes", "failed", "the API could not list the Nodes: %s" % reason))
        findings.append(finding("pods", "pods", "unknown", "not checked: the API could not list them"))
    else:
        findings += judge_nodes(inputs.get("nodes"), inputs.get("expected_nodes"))
        findings += judge_pods(inputs.get("pods"))
        addon_namespaces = set(ns for a in inputs.get("addons") or [] for ns in a.get("namespaces") or [])
        findings += judge_workloads(inputs.get("workloads"), addon_namespaces)
        findings += judge_addons(inputs.get("addons"), inputs.get("releases"), inputs.get("workloads"))
        findings += judge_services(inputs.get("services"))
        findings += judge_longhorn(inputs.get("longhorn_nodes"), inputs.get("longhorn_volumes"),
                                   inputs.get("longhorn_expected", False))
    findings += judge_certificates(inputs.get("certificates"), now, warning_days, inputs.get("certificates_error"))
    findings += judge_node_checks(inputs.get("node_checks"))
    if not any(check.get("roce") for check in inputs.get("node_checks") or []):
        findings += judge_roce(inputs.get("roce_verdict"))
    findings += judge_nccl(inputs.get("nccl_verdict"), inputs.get("nccl_source"))
    status = overall(findings)
    generated = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"status": status, "exit_code": EXIT_CODES[status], "counts": counts(findings), "findings": findings,
            "failures": _lines(findings, "failed"), "degradations": _lines(findings, "degraded"),
            "text": table(findings, status, generated), "generated": generated}


def with_node_checks(report_, checks):
    """``report_`` (what ``report`` returned without node checks) with each node's judges added (see
    judge_node_checks): the findings, status, counts, lines and table made again, at the report's own time. A node's
    RoCE verdict now replaces the "last recorded verdict" finding, as ``report`` does when it has the checks. The
    report is made first and the judges after, so check-cluster.yml reads the cluster once, gives the workers'
    membership judge the Nodes it read, and adds their findings here."""
    checks = checks or []
    findings = list(report_.get("findings") or [])
    if any(check.get("roce") for check in checks):
        findings = [f for f in findings if not (f["area"] == "fabric" and f["subject"] == "RoCE")]
    findings += judge_node_checks(checks)
    status = overall(findings)
    generated = report_.get("generated")
    return dict(report_, status=status, exit_code=EXIT_CODES[status], counts=counts(findings), findings=findings,
                failures=_lines(findings, "failed"), degradations=_lines(findings, "degraded"),
                text=table(findings, status, generated))


# Node fields the membership judge and the summary read; the rest (managedFields, the image list) is bulk.
_NODE_BULK = ("images",)


def node_view(node):
    """A Node object without its bulk (metadata.managedFields, status.images): what check-cluster.yml passes from
    the report to each worker's membership judge."""
    metadata = dict((key, value) for key, value in (node.get("metadata") or {}).items() if key != "managedFields")
    status = dict((key, value) for key, value in (node.get("status") or {}).items() if key not in _NODE_BULK)
    return dict(node, metadata=metadata, status=status)


def _lines(findings, severity):
    return ["%s %s: %s" % (f["area"], f["subject"], f["message"]) for f in findings if f["severity"] == severity]
