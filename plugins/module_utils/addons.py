# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure judgement of one cluster add-on (a Helm release and the objects it must bring up), from what the API returned.

No I/O here: ``addons_io`` reads the objects with kubectl, the ``addon_status`` module is glue, the roles act on
the verdict. A verdict has three parts, so a healthy add-on costs one task:

* ``plan_release``: install or upgrade the chart? (missing, another chart version, other values, a failed release)
* ``not_ready``: which of the objects the add-on is waited for are not ready yet, each with a plain reason.
* ``drift``: which desired objects (an IPAddressPool, a RuntimeClass, ...) differ from what the API holds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import re

# Helm keeps each revision of a release in a Secret of type helm.sh/release.v1, labelled owner=helm, name=<release>,
# version=<revision>, status=<status>; data.release is base64 (Helm's own, inside the Secret's base64) of gzipped JSON.
HELM_SECRET_TYPE = "helm.sh/release.v1"
GZIP_MAGIC = b"\x1f\x8b"

# A pinned chart version: exactly one release (semver, optional leading v and pre-release), nothing a range accepts.
PINNED_VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")

# Kinds whose readiness this module judges, by the fields their controllers publish.
READY_KINDS = ("DaemonSet", "Deployment", "Endpoints", "ValidatingWebhookConfiguration", "CustomResourceDefinition",
               "StorageClass", "RuntimeClass", "TigeraStatus")


class AddonInputError(ValueError):
    """A desired object or readiness entry the module cannot judge (a caller's mistake, not a cluster state)."""


def version_problem(name, value):
    """The message when ``value`` is not one pinned chart version (``latest``, empty, a range); None when it is."""
    text = "" if value is None else str(value).strip()
    if not text:
        return "%s is empty: pin one chart version (for example 0.15.2)" % name
    if text.lower() in ("latest", "stable", "*"):
        return "%s is '%s', which is not a version: pin one chart version (for example 0.15.2)" % (name, text)
    if not PINNED_VERSION_RE.match(text):
        return ("%s '%s' is not one pinned version (a range, a wildcard or a partial version lets the chart move "
                "under the cluster): pin one release such as 1.2.3" % (name, text))
    return None


def version_tuple(value):
    """(major, minor, patch) of a version string (leading v allowed); None when it has no such numbers."""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", str(value or "").strip())
    return tuple(int(part) for part in match.groups()) if match else None


def decode_release(encoded):
    """The release record of one Helm release Secret from its ``data.release`` field (as the API returns it).

    Returns ``{"chart_version", "chart", "status", "revision", "values"}``; ``values`` are the values the release
    was installed with (what ``helm get values`` prints), ``{}`` when none were given."""
    raw = base64.b64decode(encoded)          # the Secret's base64
    raw = base64.b64decode(raw)              # Helm's own base64
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    record = json.loads(raw.decode("utf-8"))
    metadata = ((record.get("chart") or {}).get("metadata") or {})
    return {
        "chart": metadata.get("name"),
        "chart_version": metadata.get("version"),
        "app_version": metadata.get("appVersion"),
        "status": (record.get("info") or {}).get("status"),
        "revision": record.get("version"),
        "values": record.get("config") or {},
    }


def latest_release(secrets):
    """The newest revision among a release's Helm Secrets (a ``kubectl get secret -o json`` list's items), decoded;
    None when there is none."""
    best = None
    for item in secrets or []:
        if item.get("type") != HELM_SECRET_TYPE:
            continue
        labels = (item.get("metadata") or {}).get("labels") or {}
        try:
            revision = int(labels.get("version"))
        except (TypeError, ValueError):
            continue
        encoded = (item.get("data") or {}).get("release")
        if encoded and (best is None or revision > best[0]):
            best = (revision, encoded)
    if best is None:
        return None
    release = decode_release(best[1])
    if release.get("revision") is None:
        release["revision"] = best[0]
    return release


def _normal(value):
    """Values as JSON sees them, so 1 and 1.0, tuples and lists, compare like Helm stores them."""
    return json.loads(json.dumps(value, sort_keys=True))


def _same(left, right):
    """Equality as JSON (and Helm's templates) see it: true is not 1, 1 is 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return set(left) == set(right) and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    return left == right


def values_differences(wanted, current, prefix=""):
    """Dotted paths where the release's values differ from the wanted ones (sorted)."""
    wanted, current = _normal(wanted), _normal(current)
    if isinstance(wanted, dict) and isinstance(current, dict):
        paths = []
        for key in sorted(set(wanted) | set(current)):
            path = "%s.%s" % (prefix, key) if prefix else str(key)
            if key not in wanted or key not in current:
                paths.append(path)
            else:
                paths.extend(values_differences(wanted[key], current[key], path))
        return paths
    return [] if _same(wanted, current) else [prefix or "(all values)"]


def plan_release(release, chart, version, values):
    """``(install, reasons)``: whether ``helm upgrade --install`` must run, and why, in plain words."""
    if release is None:
        return True, ["the release is not installed"]
    reasons = []
    if release.get("chart") and chart and release["chart"] != chart:
        reasons.append("the release runs chart %s, wants %s" % (release["chart"], chart))
    if str(release.get("chart_version")).lstrip("v") != str(version).lstrip("v"):
        reasons.append("chart version %s is installed, %s is pinned" % (release.get("chart_version"), version))
    if release.get("status") != "deployed":
        reasons.append("the release is %s, not deployed" % (release.get("status") or "in an unknown state"))
    changed = values_differences(values or {}, release.get("values") or {})
    if changed:
        shown = ", ".join(changed[:5]) + (" and %d more" % (len(changed) - 5) if len(changed) > 5 else "")
        reasons.append("values differ from the inventory at %s" % shown)
    return bool(reasons), reasons


def describe(entry):
    kind = entry.get("kind")
    namespace = entry.get("namespace")
    return "%s %s%s" % (kind, "%s/" % namespace if namespace else "", entry.get("name"))


def _conditions(obj):
    return dict((c.get("type"), c) for c in ((obj.get("status") or {}).get("conditions") or []))


def _rollout(obj, desired, ready, updated, available=None):
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return "its controller has not seen the latest spec yet"
    if desired == 0:
        return "no pod is scheduled yet (0 desired)"
    if ready < desired:
        return "%d/%d pods ready" % (ready, desired)
    if updated is not None and updated < desired:
        return "%d/%d pods updated to the current spec" % (updated, desired)
    if available is not None and available < desired:
        return "%d/%d pods available" % (available, desired)
    return None


def ready_problem(entry, obj):
    """Why one object is not ready (a plain reason), or None when it is.

    ``entry``: ``{"kind", "name", "namespace"}``; ``obj``: the object as the API returned it, None when absent."""
    kind = entry.get("kind")
    if kind not in READY_KINDS:
        raise AddonInputError("cannot judge the readiness of kind %r (one of %s)" % (kind, ", ".join(READY_KINDS)))
    if obj is None:
        return "does not exist yet"
    status = obj.get("status") or {}
    if kind == "DaemonSet":
        return _rollout(obj, status.get("desiredNumberScheduled", 0), status.get("numberReady", 0),
                        status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0))
    if kind == "Deployment":
        desired = (obj.get("spec") or {}).get("replicas", 1)
        if desired == 0:
            return "scaled to 0 replicas"
        return _rollout(obj, desired, status.get("readyReplicas", 0), status.get("updatedReplicas", 0),
                        status.get("availableReplicas", 0))
    if kind == "Endpoints":
        ready = [a for subset in obj.get("subsets") or [] for a in subset.get("addresses") or []]
        return None if ready else "no ready endpoint behind the Service yet"
    if kind == "ValidatingWebhookConfiguration":
        hooks = obj.get("webhooks") or []
        if not hooks:
            return "has no webhooks yet"
        missing = [h.get("name") for h in hooks if not (h.get("clientConfig") or {}).get("caBundle")]
        return "webhook %s has no CA bundle yet (certificate not injected)" % ", ".join(missing) if missing else None
    if kind == "CustomResourceDefinition":
        condition = _conditions(obj).get("Established") or {}
        return None if condition.get("status") == "True" else "is not Established yet"
    if kind == "TigeraStatus":
        conditions = _conditions(obj)
        degraded = conditions.get("Degraded") or {}
        if degraded.get("status") == "True":
            return "is Degraded: %s" % (degraded.get("message") or degraded.get("reason") or "no reason given")
        available = conditions.get("Available") or {}
        if available.get("status") != "True":
            progressing = conditions.get("Progressing") or {}
            return "is not Available yet%s" % (": %s" % progressing["message"] if progressing.get("message") else "")
        return None
    return None  # StorageClass, RuntimeClass: existing is ready


def not_ready(entries, found):
    """``["DaemonSet calico-system/calico-node: 1/2 pods ready", ...]`` for ``entries`` not ready, in order.

    ``found``: ``{(kind, namespace or "", name): obj}`` of the objects the API returned."""
    lines = []
    for entry in entries or []:
        problem = ready_problem(entry, found.get(key_of(entry)))
        if problem:
            lines.append("%s: %s" % (describe(entry), problem))
    return lines


def key_of(entry):
    return (entry.get("kind"), entry.get("namespace") or "", entry.get("name"))


def object_entry(manifest):
    """``{"api_version", "kind", "name", "namespace"}`` of a desired object, checked."""
    if not isinstance(manifest, dict):
        raise AddonInputError("a desired object must be a mapping, got %r" % (manifest,))
    metadata = manifest.get("metadata") or {}
    missing = [field for field, value in (("apiVersion", manifest.get("apiVersion")), ("kind", manifest.get("kind")),
                                          ("metadata.name", metadata.get("name"))) if not value]
    if missing:
        raise AddonInputError("a desired object lacks %s: %r" % (", ".join(missing), manifest))
    return {"api_version": manifest["apiVersion"], "kind": manifest["kind"], "name": metadata["name"],
            "namespace": metadata.get("namespace") or ""}


def resource_name(api_version, kind):
    """What kubectl calls a kind: ``daemonset.apps``, ``ipaddresspool.metallb.io``, ``configmap`` (core)."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return "%s.%s" % (kind.lower(), group) if group else kind.lower()


def _subset_differences(wanted, live, path):
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return [path]
        out = []
        for key in sorted(wanted):
            out.extend(_subset_differences(wanted[key], live.get(key), "%s.%s" % (path, key) if path else key))
        return out
    return [] if _same(_normal(wanted), _normal(live)) else [path]


def object_drift(manifest, live):
    """Why a desired object differs from the live one (None when every field it sets holds that value).

    Fields the manifest does not set (status, defaults the API adds, other owners' labels) are not compared, as
    ``kubectl apply`` would leave them."""
    if live is None:
        return "missing"
    wanted = dict((key, value) for key, value in manifest.items() if key not in ("apiVersion", "kind", "status"))
    metadata = dict((key, value) for key, value in (wanted.pop("metadata", None) or {}).items()
                    if key in ("labels", "annotations"))
    if metadata:
        wanted["metadata"] = metadata
    paths = _subset_differences(wanted, live, "")
    return "differs at %s" % ", ".join(paths) if paths else None


def kube_proxy_mode(configmap):
    """``{"mode", "strict_arp"}`` from kube-proxy's ConfigMap (kubeadm's ``kube-system/kube-proxy``), parsed from
    its ``config.conf``; ``None`` when there is no kube-proxy ConfigMap. An empty mode is kube-proxy's default,
    iptables. The YAML is read line by line (kubeadm writes it flat and indented): no YAML library is needed."""
    if configmap is None:
        return None
    text = ((configmap.get("data") or {}).get("config.conf")) or ""
    mode, strict_arp, section = "", False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, unused_colon, value = line.strip().partition(":")
        value = value.strip().strip("\"'")
        if indent == 0:
            section = key
            if key == "mode":
                mode = value
        elif section == "ipvs" and key == "strictARP":
            strict_arp = value.lower() == "true"
    return {"mode": mode or "iptables", "strict_arp": strict_arp}


def judge(release_wanted, release, ready_entries, found, manifests, live_objects, kube_proxy=None, admission=None):
    """The whole verdict on one add-on, from what the API returned (see the module's RETURN).

    ``admission``: None when not checked, else the API's answer to a server-side dry run of the drifted desired
    objects: "" when it accepted them, the error when it (an admission webhook that does not answer yet) refused."""
    result = {"install": False, "install_reasons": [], "release": None}
    if release_wanted:
        install, reasons = plan_release(release, release_wanted.get("chart"), release_wanted.get("version"),
                                        release_wanted.get("values"))
        result.update(install=install, install_reasons=reasons)
        if release is not None:
            result["release"] = dict((k, release[k]) for k in ("chart", "chart_version", "status", "revision"))
    lines = not_ready(ready_entries, found)
    if admission:
        lines.append("the API does not accept the desired objects yet (server-side dry run): %s" % admission)
    result["not_ready"] = lines
    result["ready"] = not lines
    drift = []
    for index, manifest in enumerate(manifests or []):
        entry = object_entry(manifest)
        reason = object_drift(manifest, live_objects.get((entry["kind"], entry["namespace"], entry["name"])))
        if reason:
            drift.append({"index": index, "kind": entry["kind"], "name": entry["name"],
                          "namespace": entry["namespace"], "reason": reason})
    result["drift"] = drift
    result["kube_proxy"] = kube_proxy
    result["strict_arp_needed"] = bool(kube_proxy and kube_proxy["mode"] == "ipvs" and not kube_proxy["strict_arp"])
    # Nothing to do: start-cluster.yml does not include a healthy add-on's role at all.
    result["idle"] = not (result["install"] or drift or lines or result["strict_arp_needed"])
    return result


def _range_networks(entry):
    """The networks that exactly cover one range: "a.b.c.d-e.f.g.h" or a CIDR."""
    import ipaddress
    text = str(entry).strip()
    if "-" in text:
        first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
        return list(ipaddress.summarize_address_range(first, last))
    return [ipaddress.ip_network(text, strict=False)]


def overlapping_cidrs(pod_cidr, ranges):
    """The parts of ``pod_cidr`` that ``ranges`` (CIDRs or "first-last") cover, as the fewest CIDRs, sorted.

    What Calico must reserve so that no pod gets an address of the LAN or the MetalLB pool."""
    import ipaddress
    pod = ipaddress.ip_network(str(pod_cidr), strict=False)
    parts = []
    for entry in ranges or []:
        for net in _range_networks(entry):
            if net.version != pod.version or not net.overlaps(pod):
                continue
            parts.append(net if net.subnet_of(pod) else pod)
    return [str(net) for net in ipaddress.collapse_addresses(parts)]
