# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure summary of the cluster a run leaves: one line per Node, GPU warnings, which Nodes to uncordon, and the
judgement of the run (every inventory node Ready, or why not and what the run tried on it).

Input is the Node list as kubernetes.core.k8s_info returns it (plain dicts), so a unit test drives it directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CORDONED_BY = "dgx-spark.cluster/cordoned-by"
GPU_RESOURCE = "nvidia.com/gpu"


def _ready_condition(node):
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return {}


def _ready(node):
    return _ready_condition(node).get("status") or "Unknown"


def _int(value):
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def cordoned_by_us(nodes):
    """Names of the Nodes that stop-cluster or sleep-cluster cordoned: those carrying the annotation, whatever its value
    (it names the playbook); an operator's own cordon has none."""
    names = []
    for node in nodes or []:
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        if CORDONED_BY in annotations:
            names.append(node["metadata"]["name"])
    return names


def node_summary(nodes, expected_gpus=None, uncordoned=()):
    """``{lines, warnings}``: one line per Node (Ready, kubelet version, GPUs, cordon state) and a warning for
    each Node with fewer allocatable GPUs than the inventory expects (``expected_gpus``: name -> count)."""
    expected_gpus = expected_gpus or {}
    uncordoned = set(uncordoned or ())
    lines, warnings = [], []
    for node in sorted(nodes or [], key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        status = node.get("status") or {}
        gpus = _int((status.get("allocatable") or {}).get(GPU_RESOURCE, 0))
        line = "%s: Ready=%s, kubelet %s, GPUs allocatable %d" % (
            name, _ready(node), (status.get("nodeInfo") or {}).get("kubeletVersion") or "?", gpus)
        if name in uncordoned:
            line += ", uncordoned now"
        elif (node.get("spec") or {}).get("unschedulable"):
            line += ", cordoned"
        lines.append(line)
        want = _int(expected_gpus.get(name, 0))
        if gpus < want:
            warnings.append("%s has %d of %d expected GPUs allocatable (GPU Operator not ready yet?); the cluster "
                            "itself is up" % (name, gpus, want))
    return {"lines": lines, "warnings": warnings}


def membership_attempts(host_vars, keys):
    """What a run did about one node's membership: ``action because reasons`` for each registered plan or result
    named in ``keys`` (in order) that exists, ran, and was not ``none``."""
    attempts = []
    for key in keys or []:
        result = (host_vars or {}).get(key)
        if not isinstance(result, dict) or result.get("skipped") or not result.get("action"):
            continue
        if result["action"] == "none" and not result.get("failed"):
            continue
        text = "%s because %s" % (result["action"], "; ".join(result.get("reasons") or []) or "(no reason given)")
        if text not in attempts:
            attempts.append(text)
    return attempts


def not_ready(nodes, expected, attempts=None):
    """``[{name, line}]`` for each inventory node (``expected``) whose Node is missing or not Ready: the Node's own
    Ready condition (status, reason, message, since when) and what this run tried on it (``attempts``: name ->
    list of strings, see membership_attempts)."""
    by_name = dict((n["metadata"]["name"], n) for n in nodes or [])
    attempts = attempts or {}
    found = []
    for name in expected or []:
        node = by_name.get(name)
        if node is None:
            line = "%s: no Node in the API" % name
        else:
            condition = _ready_condition(node)
            if condition.get("status") == "True":
                continue
            line = "%s: Ready=%s" % (name, condition.get("status") or "absent")
            detail = ": ".join(str(part) for part in (condition.get("reason"), condition.get("message")) if part)
            if detail:
                line += " (%s)" % detail
            if condition.get("lastTransitionTime"):
                line += " since %s" % condition["lastTransitionTime"]
        tried = attempts.get(name) or []
        line += "; this run: %s" % (" then ".join(tried) if tried else "nothing (its plan was none)")
        found.append({"name": name, "line": line})
    return found
