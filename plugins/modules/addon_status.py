#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: addon_status
short_description: Judge one cluster add-on in one call, Helm release, readiness and desired objects
version_added: "0.2.0"
description:
  - Reads, with C(kubectl) on the control plane, the newest revision of a Helm release (from Helm's own release
    Secrets), the objects the add-on is waited for, and the desired objects the role manages beside the chart, and
    says what the role has to do, with a plain reason for each thing.
  - Never changes anything. The add-on roles run it first and skip everything else when the release is at the
    pinned version with the inventory's values, every waited object is ready and no desired object drifted, so a
    healthy add-on costs one task.
  - With O(wait_timeout) it also waits for readiness after an install, and names what is still not ready.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  release:
    description:
      - The Helm release to judge. Omit to judge readiness and objects only.
    type: dict
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Release namespace.
        type: str
        required: true
      chart:
        description: Chart name (the name in C(Chart.yaml)); a release of another chart needs an upgrade.
        type: str
      version:
        description: The pinned chart version.
        type: str
        required: true
      values:
        description: The values the release must have been installed with (what C(helm get values) prints).
        type: dict
        default: {}
  ready:
    description:
      - Objects that must be ready. Kinds C(DaemonSet) and C(Deployment) (every desired pod ready and updated),
        C(Endpoints) (at least one ready address), C(ValidatingWebhookConfiguration) (every webhook has a CA
        bundle), C(CustomResourceDefinition) (Established), C(TigeraStatus) (Available, not Degraded),
        C(StorageClass) and C(RuntimeClass) (they exist).
    type: list
    elements: dict
    default: []
    suboptions:
      kind:
        description: Object kind.
        type: str
        required: true
      name:
        description: Object name.
        type: str
        required: true
      namespace:
        description: Namespace of a namespaced kind.
        type: str
  objects:
    description:
      - Desired objects (full manifests). An object drifts when it is missing or a field the manifest sets differs;
        fields it does not set are not compared, as C(kubectl apply) leaves them.
    type: list
    elements: dict
    default: []
  kube_proxy:
    description: Also read kube-proxy's mode and C(ipvs.strictARP) from C(kube-system/kube-proxy).
    type: bool
    default: false
  nodes:
    description:
      - With O(addons), also return every Node in RV(nodes), read in parallel with the add-ons (one call for a
        caller that needs both).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for every object of O(ready) to be ready (polling every 3 s); 0 judges once. The result
        after the wait is returned; the module does not fail when the add-on is still not ready.
    type: int
    default: 0
  admission_check:
    description:
      - While waiting, also offer the drifted O(objects) to the API in a server-side dry run (nothing is stored),
        and count the add-on ready only once the API, with its admission webhooks, accepts them.
    type: bool
    default: false
  addons:
    description:
      - Judge several add-ons in one call instead (each once, no wait), in parallel; each entry has a C(label) and
        the options O(release), O(ready), O(objects) and O(kube_proxy) of one add-on. The verdicts come back in
        RV(addons), keyed by label, and the other options are ignored.
    type: list
    elements: dict
  kubeconfig:
    description: Kubeconfig that C(kubectl) uses.
    type: path
    default: /etc/kubernetes/admin.conf
  kubectl:
    description: The C(kubectl) binary (name or path).
    type: str
    default: kubectl
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  idempotent:
    description: Never changes anything.
    support: full
notes:
  - Helm's release Secrets are read instead of running C(helm), so the node needs only C(kubectl).
"""

EXAMPLES = r"""
- name: MetalLB | Release, readiness and the address pool in one call
  dgx_spark.cluster.addon_status:
    release:
      name: metallb
      namespace: metallb-system
      chart: metallb
      version: 0.15.2
      values: "{{ metallb_chart_values }}"
    ready:
      - {kind: Deployment, name: metallb-controller, namespace: metallb-system}
      - {kind: DaemonSet, name: metallb-speaker, namespace: metallb-system}
      - {kind: Endpoints, name: metallb-webhook-service, namespace: metallb-system}
    objects: "{{ metallb_objects }}"
    kube_proxy: true
  become: true
  register: metallb_status
"""

RETURN = r"""
addons:
  description: With O(addons), the verdict (every other return value here) of each add-on, keyed by its label.
  returned: when O(addons) is given
  type: dict
nodes:
  description: Every Node as C(kubectl get nodes -o json) lists it; null when that read failed.
  returned: when O(addons) and O(nodes) are given
  type: list
  elements: dict
install:
  description: Whether C(helm upgrade --install) must run.
  returned: unless O(addons) is given
  type: bool
install_reasons:
  description: Why it must run (empty when it need not).
  returned: unless O(addons) is given
  type: list
  elements: str
  sample: ["chart version 0.14.9 is installed, 0.15.2 is pinned"]
release:
  description: The installed release (chart, chart_version, status, revision); null when not installed or not asked.
  returned: unless O(addons) is given
  type: dict
ready:
  description: Whether every object of O(ready) is ready.
  returned: unless O(addons) is given
  type: bool
not_ready:
  description: One line per object of O(ready) that is not ready, with the reason.
  returned: unless O(addons) is given
  type: list
  elements: str
  sample: ["DaemonSet metallb-system/metallb-speaker: 1/2 pods ready"]
drift:
  description: The objects of O(objects) that are missing or differ (index in O(objects), kind, name, namespace, reason).
  returned: unless O(addons) is given
  type: list
  elements: dict
kube_proxy:
  description: kube-proxy's C(mode) and C(strict_arp); null when not asked or kube-proxy has no ConfigMap.
  returned: unless O(addons) is given
  type: dict
waited:
  description: Seconds spent waiting (0 without O(wait_timeout)).
  returned: unless O(addons) is given
  type: int
strict_arp_needed:
  description: kube-proxy runs in IPVS mode without C(strictARP), which MetalLB's layer-2 mode needs.
  returned: unless O(addons) is given
  type: bool
idle:
  description:
    - Nothing to do - no install or upgrade, no drifted object, ready, and no strictARP needed. C(start-cluster.yml)
      does not include an idle add-on's role.
  returned: unless O(addons) is given
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            release=dict(type="dict", options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
                chart=dict(type="str"),
                version=dict(type="str", required=True),
                values=dict(type="dict", default={}),
            )),
            ready=dict(type="list", elements="dict", default=[], options=dict(
                kind=dict(type="str", required=True),
                name=dict(type="str", required=True),
                namespace=dict(type="str"),
            )),
            objects=dict(type="list", elements="dict", default=[]),
            kube_proxy=dict(type="bool", default=False),
            nodes=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=0),
            admission_check=dict(type="bool", default=False),
            addons=dict(type="list", elements="dict"),
            kubeconfig=dict(type="path", default="/etc/kubernetes/admin.conf"),
            kubectl=dict(type="str", default="kubectl"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = CommandRunner(module, default_timeout=30)
    kubectl = params["kubectl"] if "/" in params["kubectl"] else runner.binary(params["kubectl"])
    reader = addons_io.Reader(runner, kubectl, params["kubeconfig"])
    try:
        if params["addons"] is not None:
            specs = [addon_spec(module, entry) for entry in params["addons"]]
            if params["nodes"]:
                verdicts, nodes = addons_io.status_and_nodes(reader, specs)
                module.exit_json(changed=False, addons=verdicts, nodes=nodes)
            module.exit_json(changed=False, addons=addons_io.status_of_many(reader, specs))
        result = addons_io.status(reader, params)
    except core.AddonInputError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


def addon_spec(module, entry):
    """One entry of O(addons), checked like the top-level options (labelled, so a mistake names its add-on)."""
    label = entry.get("label")
    if not label:
        module.fail_json(msg="addons: every entry needs a label, got %r" % (entry,))
    release = entry.get("release")
    if release is not None:
        missing = [key for key in ("name", "namespace", "version") if not release.get(key)]
        if missing:
            module.fail_json(msg="addons: %s: release lacks %s" % (label, ", ".join(missing)))
        release = dict(release, values=release.get("values") or {})
    ready = []
    for item in entry.get("ready") or []:
        if not item.get("kind") or not item.get("name"):
            module.fail_json(msg="addons: %s: every ready entry needs kind and name, got %r" % (label, item))
        ready.append({"kind": item["kind"], "name": item["name"], "namespace": item.get("namespace")})
    return {"label": label, "release": release, "ready": ready, "objects": entry.get("objects") or [],
            "kube_proxy": bool(entry.get("kube_proxy"))}


if __name__ == "__main__":
    main()
