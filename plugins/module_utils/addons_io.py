# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reads behind ``addon_status``: kubectl on the control plane, as few calls as the namespaces need.

Read-only. Objects are fetched per namespace in one ``kubectl get a/x b/y -o json --ignore-not-found`` call; a
resource type the API does not serve yet (a CRD the chart has not installed) counts as absent, not as an error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import threading
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons as core

_UNKNOWN_TYPE_RE = re.compile(r'doesn\'t have a resource type "([^"]+)"')


class Reader(object):
    def __init__(self, runner, kubectl, kubeconfig, timeout=20):
        self.runner = runner
        self.base = [kubectl, "--kubeconfig", kubeconfig, "--request-timeout=%ds" % timeout]

    def _get_json(self, argv, what):
        rc, out, err = self.runner.run(self.base + argv + ["-o", "json"], check=False)
        if rc != 0:
            return rc, None, err
        try:
            return 0, json.loads(out) if out.strip() else None, err
        except ValueError:
            self.runner.fail("kubectl returned output that is not JSON while reading %s" % what, argv, rc, out, err)

    def objects(self, refs, parallel=False):
        """``{(kind, namespace, name): obj}`` for ``refs`` (``{"api_version", "kind", "name", "namespace"}``);
        absent objects are simply not in the result. One kubectl call per namespace, in parallel threads with
        ``parallel`` (kubectl waits on the API, so the calls overlap)."""
        found = {}
        by_namespace = {}
        for ref in refs:
            by_namespace.setdefault(ref.get("namespace") or "", []).append(ref)
        groups = sorted(by_namespace.items())
        if not parallel or len(groups) < 2:
            for namespace, group in groups:
                self._namespace_objects(namespace, group, found)
            return found
        run_in_threads(dict((namespace, (lambda ns=namespace, grp=group: self._namespace_objects(ns, grp, found)))
                            for namespace, group in groups))
        return found

    def _namespace_objects(self, namespace, group, found):
        """One namespace's objects into ``found``, read again without a kind the API does not serve yet."""
        pending = list(group)
        while pending:
            names = []
            for ref in pending:
                name = "%s/%s" % (core.resource_name(ref["api_version"], ref["kind"]), ref["name"])
                if name not in names:
                    names.append(name)
            argv = ["get"] + names + ["--ignore-not-found"] + (["-n", namespace] if namespace else [])
            rc, data, err = self._get_json(argv, ", ".join(names))
            if rc == 0:
                items = (data or {}).get("items") if (data or {}).get("kind") == "List" else ([data] if data else [])
                for obj in items or []:
                    meta = obj.get("metadata") or {}
                    found[(obj.get("kind"), meta.get("namespace") or "", meta.get("name"))] = obj
                break
            unknown = _UNKNOWN_TYPE_RE.search(err or "")
            if not unknown:
                self.runner.fail("kubectl could not read %s" % ", ".join(names), self.base + argv, rc, "", err)
            # A kind whose CRD is not installed yet: everything of that kind is absent.
            kind_name = unknown.group(1).split(".", 1)[0].lower()
            kept = [ref for ref in pending if ref["kind"].lower() != kind_name
                    and core.resource_name(ref["api_version"], ref["kind"]) != unknown.group(1)]
            if len(kept) == len(pending):
                self.runner.fail("kubectl could not read %s" % ", ".join(names), self.base + argv, rc, "", err)
            pending = kept

    def nodes(self):
        """Every Node as the API lists it (``kubectl get nodes -o json``'s items); None when the read failed."""
        rc, data, dummy = self._get_json(["get", "nodes"], "Nodes")
        return (data or {}).get("items", []) if rc == 0 else None

    def dry_run(self, manifests):
        """"" when the API (and its admission webhooks) accepts ``manifests`` in a server-side dry run, else the
        error it gave. Nothing is stored: that is what a server-side dry run is."""
        argv = ["apply", "--dry-run=server", "-o", "name", "-f", "-"]
        data = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
        rc, unused_out, err = self.runner.run(self.base + argv, check=False, data=data)
        if rc == 0:
            return ""
        lines = [line.strip() for line in (err or "").splitlines() if line.strip()]
        return lines[-1] if lines else "kubectl exited with %d" % rc

    def releases(self, wanted):
        """``{(namespace, name): release}`` of the newest revision of each wanted release, from one Secret read
        across namespaces (superseded revisions left out by the label selector)."""
        names = sorted(set(release["name"] for release in wanted))
        argv = ["get", "secret", "-A", "-l", "owner=helm,status!=superseded,name in (%s)" % ",".join(names)]
        rc, data, err = self._get_json(argv, "the Helm releases %s" % ", ".join(names))
        if rc != 0:
            self.runner.fail("kubectl could not read the Helm releases %s" % ", ".join(names), self.base + argv, rc,
                             "", err)
        by_release = {}
        for item in (data or {}).get("items") or []:
            meta = item.get("metadata") or {}
            key = (meta.get("namespace"), (meta.get("labels") or {}).get("name"))
            by_release.setdefault(key, []).append(item)
        return dict((key, core.latest_release(items)) for key, items in by_release.items())

    def release(self, name, namespace):
        """The newest revision of Helm release ``name`` in ``namespace``, decoded; None when not installed."""
        argv = ["get", "secret", "-n", namespace, "-l", "owner=helm,name=%s" % name]
        rc, data, err = self._get_json(argv, "the Helm release %s" % name)
        if rc != 0:
            self.runner.fail("kubectl could not read the Helm release %s in %s" % (name, namespace),
                             self.base + argv, rc, "", err)
        return core.latest_release((data or {}).get("items"))


KUBE_PROXY_REF = {"api_version": "v1", "kind": "ConfigMap", "name": "kube-proxy", "namespace": "kube-system"}


def gather(reader, params):
    """Everything ``core.judge`` needs, read with as few kubectl calls as there are namespaces."""
    release = None
    if params.get("release"):
        release = reader.release(params["release"]["name"], params["release"]["namespace"])
    ready_refs = [dict(entry, api_version=entry.get("api_version") or api_version_of(entry["kind"]))
                  for entry in params.get("ready") or []]
    manifests = params.get("objects") or []
    object_refs = [core.object_entry(m) for m in manifests]
    refs = ready_refs + object_refs + ([KUBE_PROXY_REF] if params.get("kube_proxy") else [])
    found = reader.objects(refs) if refs else {}
    kube_proxy = None
    if params.get("kube_proxy"):
        kube_proxy = core.kube_proxy_mode(found.get(("ConfigMap", "kube-system", "kube-proxy")))
    return release, found, kube_proxy


def status(reader, params, clock=time.monotonic, sleep=time.sleep, poll=3):
    """The verdict (``core.judge``), waiting up to ``params["wait_timeout"]`` seconds for the add-on to be ready.

    While waiting, the desired objects that drifted are also offered to the API in a server-side dry run, so the
    wait ends only when their admission webhook answers (MetalLB's commonest failure is a pool applied before)."""
    deadline = clock() + (params.get("wait_timeout") or 0)
    waited_from = clock()
    while True:
        release, found, kube_proxy = gather(reader, params)
        admission = None
        result = core.judge(params.get("release"), release, params.get("ready") or [], found,
                            params.get("objects") or [], found, kube_proxy)
        if params.get("admission_check") and result["drift"] and result["ready"]:
            drifted = set((d["kind"], d["namespace"], d["name"]) for d in result["drift"])
            offered = [m for m in params.get("objects") or [] if key_of_manifest(m) in drifted]
            admission = reader.dry_run(offered)
            result = core.judge(params.get("release"), release, params.get("ready") or [], found,
                                params.get("objects") or [], found, kube_proxy, admission)
        if result["ready"] or clock() >= deadline:
            result["waited"] = int(round(clock() - waited_from))
            return result
        sleep(poll)


def status_of_many(reader, specs):
    """``{label: verdict}`` for several add-ons at once (``specs``: the module's ``addons``), each judged once.

    Every release comes from one Secret read across namespaces, and every object from one read per namespace
    (shared by the add-ons, run in parallel): a no-op run pays a handful of kubectl calls for all add-ons."""
    wanted = [spec["release"] for spec in specs if spec.get("release")]
    releases = reader.releases(wanted) if wanted else {}
    refs = []
    for spec in specs:
        refs.extend(dict(entry, api_version=entry.get("api_version") or api_version_of(entry["kind"]))
                    for entry in spec.get("ready") or [])
        refs.extend(core.object_entry(manifest) for manifest in spec.get("objects") or [])
        if spec.get("kube_proxy"):
            refs.append(KUBE_PROXY_REF)
    found = reader.objects(refs, parallel=True) if refs else {}
    results = {}
    for spec in specs:
        release = spec.get("release")
        current = releases.get((release["namespace"], release["name"])) if release else None
        kube_proxy = (core.kube_proxy_mode(found.get(("ConfigMap", "kube-system", "kube-proxy")))
                      if spec.get("kube_proxy") else None)
        result = core.judge(release, current, spec.get("ready") or [], found, spec.get("objects") or [], found,
                            kube_proxy)
        result["waited"] = 0
        results[spec["label"]] = result
    return results


def status_and_nodes(reader, specs):
    """``(status_of_many(reader, specs), nodes)``: the Nodes read in a thread beside the add-ons' reads, so a caller
    that needs both (start-cluster.yml's worker play) pays no second call. ``nodes`` is None when that read failed."""
    def read_nodes():
        try:
            return reader.nodes()
        except BaseException:  # pylint: disable=broad-except  # an unreadable Node list is None: the caller reads it
            return None
    results = run_in_threads({"addons": lambda: status_of_many(reader, specs), "nodes": read_nodes})
    return results["addons"], results["nodes"]


def run_in_threads(calls):
    """Run ``{key: callable}`` in threads (kubectl and kubeadm wait on the API and the disk: the calls overlap);
    ``{key: result}``. The first failure is raised again once every thread has ended."""
    results, failures = {}, []

    def run(key, call):
        try:
            results[key] = call()
        except BaseException as exc:  # pylint: disable=broad-except  # fail_json exits: re-raised after the join
            failures.append(exc)
    threads = [threading.Thread(target=run, args=item) for item in sorted(calls.items())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def key_of_manifest(manifest):
    entry = core.object_entry(manifest)
    return (entry["kind"], entry["namespace"], entry["name"])


# The API group of each kind a readiness entry may name (the entry may also give api_version itself).
_API_VERSIONS = {
    "DaemonSet": "apps/v1",
    "Deployment": "apps/v1",
    "Endpoints": "v1",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "StorageClass": "storage.k8s.io/v1",
    "RuntimeClass": "node.k8s.io/v1",
    "TigeraStatus": "operator.tigera.io/v1",
}


def api_version_of(kind):
    if kind not in _API_VERSIONS:
        raise core.AddonInputError("cannot judge the readiness of kind %r (one of %s)"
                                   % (kind, ", ".join(core.READY_KINDS)))
    return _API_VERSIONS[kind]
