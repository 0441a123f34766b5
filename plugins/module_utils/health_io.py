# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reads behind ``cluster_health``: kubectl and kubeadm on the control plane, read-only, in parallel.

At most five calls, started together: ``kubectl get nodes,pods,deployments,daemonsets,services -A -o json`` (one
list of everything the report judges), ``kubectl get --raw /readyz?verbose``, one read of Helm's release Secrets
(when add-ons with releases are expected), Longhorn's nodes and volumes (when Longhorn is expected) and
``kubeadm certs check-expiration -o json``. None of them writes anything. A read that fails becomes a finding of
the report (the API not answering is the report's answer, not an error of the module).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons as addons_core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons_io

OBJECT_KINDS = "nodes,pods,deployments.apps,daemonsets.apps,services"
LONGHORN_KINDS = "nodes.longhorn.io,volumes.longhorn.io"


def _last_line(text, rc):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "exited with %d" % rc


class Reader(object):
    def __init__(self, runner, kubectl, kubeconfig, kubeadm="kubeadm", timeout=20):
        self.runner = runner
        self.kubeconfig = kubeconfig
        self.kubeadm = kubeadm
        self.timeout = timeout
        self.base = [kubectl, "--kubeconfig", kubeconfig, "--request-timeout=%ds" % timeout]

    def _json(self, argv):
        """``(data, error)``: the parsed output of argv, or None and why not."""
        rc, out, err = self.runner.run(argv, check=False, timeout=self.timeout + 10)
        if rc != 0:
            return None, _last_line(err or out, rc)
        try:
            return json.loads(out), None
        except ValueError:
            return None, "output is not JSON"

    def objects(self):
        """``({"Node": [...], "Pod": [...], ...}, error)`` from one list of every kind the report judges."""
        data, error = self._json(self.base + ["get", OBJECT_KINDS, "-A", "-o", "json"])
        if data is None:
            return None, error
        by_kind = {"Node": [], "Pod": [], "Deployment": [], "DaemonSet": [], "Service": []}
        for item in data.get("items") or []:
            by_kind.setdefault(item.get("kind"), []).append(item)
        return by_kind, None

    def readyz(self):
        """``(text, error)``: ``/readyz?verbose``. A failing check makes kubectl exit 1 with the check lines in
        its error message: that text is the answer too."""
        rc, out, err = self.runner.run(self.base + ["get", "--raw", "/readyz?verbose"], check=False,
                                       timeout=self.timeout + 10)
        if rc == 0:
            return out, None
        return (err or "") + (out or ""), _last_line(err or out, rc)

    def releases(self, names):
        """``({(namespace, name): release}, error)`` of the newest revision of each named Helm release."""
        argv = self.base + ["get", "secret", "-A", "-l",
                            "owner=helm,status!=superseded,name in (%s)" % ",".join(sorted(set(names))), "-o", "json"]
        data, error = self._json(argv)
        if data is None:
            return None, error
        by_release = {}
        for item in data.get("items") or []:
            meta = item.get("metadata") or {}
            by_release.setdefault((meta.get("namespace"), (meta.get("labels") or {}).get("name")), []).append(item)
        return dict((key, addons_core.latest_release(items)) for key, items in by_release.items()), None

    def longhorn(self, namespace):
        """``((nodes, volumes), error)`` of Longhorn's own objects; an API without Longhorn's CRDs is an error."""
        data, error = self._json(self.base + ["get", LONGHORN_KINDS, "-n", namespace, "-o", "json"])
        if data is None:
            return (None, None), error
        items = data.get("items") or []
        return ([i for i in items if i.get("kind") == "Node"], [i for i in items if i.get("kind") == "Volume"]), None

    def certificates(self):
        """``(info, error)``: ``kubeadm certs check-expiration -o json`` (reads /etc/kubernetes/pki)."""
        return self._json([self.kubeadm, "certs", "check-expiration", "--kubeconfig", self.kubeconfig,
                           "-o", "json"])


def gather(reader, params):
    """The inputs of ``health.report`` (except the verdicts, which come from the controller), read at once."""
    addon_list = [a for a in params.get("addons") or [] if a.get("enabled", True)]
    release_names = [a["release_name"] for a in addon_list if a.get("release_name")]
    calls = {"objects": reader.objects, "readyz": reader.readyz}
    if release_names:
        calls["releases"] = lambda: reader.releases(release_names)
    if params.get("longhorn_namespace"):
        calls["longhorn"] = lambda: reader.longhorn(params["longhorn_namespace"])
    if params.get("certificates", True):
        calls["certificates"] = reader.certificates
    results = addons_io.run_in_threads(calls)
    objects, objects_error = results["objects"]
    readyz, readyz_error = results["readyz"]
    inputs = {"readyz": readyz, "readyz_error": readyz_error, "objects_error": objects_error,
              "expected_nodes": params.get("nodes") or [], "addons": params.get("addons") or [],
              "releases": {}, "longhorn_expected": bool(params.get("longhorn_namespace"))}
    if objects is not None:
        inputs.update(nodes=objects["Node"], pods=objects["Pod"],
                      workloads=objects["Deployment"] + objects["DaemonSet"], services=objects["Service"])
    if "releases" in results:
        inputs["releases"] = results["releases"][0]
    if "longhorn" in results:
        (inputs["longhorn_nodes"], inputs["longhorn_volumes"]), unused_error = results["longhorn"]
    if "certificates" in results:
        inputs["certificates"], inputs["certificates_error"] = results["certificates"]
    else:
        inputs["certificates_error"] = params.get("certificates_off_reason") or "turned off (certificates: false)"
    return inputs
