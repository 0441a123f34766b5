#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_health
short_description: One read-only health report of the cluster, with an overall status and a table
version_added: "0.3.0"
description:
  - Reads, on the control plane and in parallel, every Node, Pod, Deployment, DaemonSet and Service in one
    C(kubectl get) call, the API's C(/readyz?verbose) checks (etcd included), Helm's release Secrets of the
    expected add-ons, Longhorn's nodes and volumes when asked, and C(kubeadm certs check-expiration -o json).
  - Judges them against the inventory's expectations (node names, GPUs, fabric addresses, add-ons) and returns
    findings (area, subject, severity, message), an overall status and a plain-text table.
  - Severities are V(ok), V(unknown) (not checked, never counted as a fault), V(degraded) and V(failed). The
    overall status is V(failed) when any finding failed (API not answering or a C(/readyz) check failing, etcd
    unhealthy, an inventory node missing or not Ready, an expired certificate), else V(degraded) when any finding
    is degraded (a pod not Running and Ready, a workload or add-on not ready, fewer GPUs than expected, a cordoned
    node or one under pressure, an InternalIP that is not the fabric address, a LoadBalancer Service without an
    address, a certificate expiring within O(cert_warning_days), a Longhorn node or attached volume not healthy,
    a recorded RoCE or NCCL verdict that failed), else V(healthy).
  - A read that fails is part of the report (for example the API not answering makes it V(failed)); the module
    itself fails only on wrong options.
  - Never changes anything. With a degraded status it also returns a warning, unless O(warn) is false (when the
    report is finished later by M(dgx_spark.cluster.health_report), which warns instead).
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  nodes:
    description: The inventory's nodes, each judged against its Node.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name (the inventory hostname).
        type: str
        required: true
      gpus:
        description: GPUs the Node must have allocatable (C(nvidia.com/gpu)); fewer is degraded.
        type: int
        default: 0
      address:
        description: The fabric address the Node's InternalIP must be (a prefix length is ignored); empty skips it.
        type: str
        default: ""
  addons:
    description:
      - The inventory's add-ons. An enabled add-on is healthy when its Helm release is deployed and every
        Deployment and DaemonSet in its O(addons[].namespaces) is ready; a disabled one is reported as not checked.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Label in the report.
        type: str
        required: true
      enabled:
        description: Whether the inventory installs it.
        type: bool
        default: true
      release_name:
        description: Its Helm release (omit for none).
        type: str
      release_namespace:
        description: Namespace of the Helm release.
        type: str
      namespaces:
        description: Namespaces whose Deployments and DaemonSets belong to the add-on.
        type: list
        elements: str
        default: []
  longhorn_namespace:
    description: Also read Longhorn's C(nodes.longhorn.io) and C(volumes.longhorn.io) in this namespace; omit to skip.
    type: str
  certificates:
    description: Read the control plane's certificates with C(kubeadm certs check-expiration -o json).
    type: bool
    default: true
  cert_warning_days:
    description: A certificate that expires within this many days is degraded (an expired one fails).
    type: int
    default: 30
  roce_verdict:
    description:
      - The last recorded C(roce_check) result (its C(failures), C(devices)), when one was kept; omitted, the
        report says that no verdict is recorded.
    type: dict
  nccl_verdict:
    description:
      - The newest saved C(nccl_test) result (the JSON the C(nccl) role keeps on the controller); omitted, the
        report says that no verdict is recorded.
    type: dict
  nccl_source:
    description: Where O(nccl_verdict) came from (shown when the result names no start time).
    type: str
  warn:
    description: Return a warning when the status is V(degraded).
    type: bool
    default: true
  node_checks:
    description:
      - What each node's own judges said, run read-only under check mode on the nodes before this module (see the
        C(health) role's C(node) entry point). Omitted, the report has no per-node membership, fabric and CNI rows.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The node.
        type: str
        required: true
      unreachable:
        description: The node could not be reached over SSH (the other judges did not run).
        type: bool
        default: false
      unreachable_msg:
        description: Why it could not be reached.
        type: str
      membership:
        description: The C(kubeadm_node) result under check mode (its C(action) and C(reasons)); null when not run.
        type: dict
      fabric:
        description: The C(fabric_ip) result under check mode (its C(actions) and C(ports)); null when not run.
        type: dict
      cni:
        description: The C(cni_cleanup) result under check mode (its C(removed)); null when not run.
        type: dict
      roce:
        description:
          - The C(roce_check) result on the node now (its C(failures), C(devices)); null when not run. When any
            node has one, these replace O(roce_verdict).
        type: dict
  kubeconfig:
    description: Kubeconfig that C(kubectl) and C(kubeadm) use.
    type: path
    default: /etc/kubernetes/admin.conf
  kubectl:
    description: The C(kubectl) binary (name or path).
    type: str
    default: kubectl
  kubeadm:
    description: The C(kubeadm) binary (name or path); when it is not found, certificates are reported as not checked.
    type: str
    default: kubeadm
  timeout:
    description: Seconds each API request may take.
    type: int
    default: 20
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
  - Run it on a control-plane node with privileges to read the admin kubeconfig and C(/etc/kubernetes/pki).
"""

EXAMPLES = r"""
- name: Health | The report
  dgx_spark.cluster.cluster_health:
    nodes:
      - {name: spark-2959, gpus: 1, address: 10.10.10.1/24}
      - {name: spark-ba63, gpus: 1, address: 10.10.10.2/24}
    addons:
      - {name: metallb, release_name: metallb, release_namespace: metallb-system, namespaces: [metallb-system]}
    longhorn_namespace: longhorn-system
    cert_warning_days: 30
  become: true
  register: health

- name: Health | Print it
  ansible.builtin.debug:
    msg: "{{ health.text.splitlines() }}"
"""

RETURN = r"""
status:
  description: The overall status.
  returned: always
  type: str
  choices: [healthy, degraded, failed]
  sample: degraded
exit_code:
  description: The exit code the status maps to (0 healthy, 1 degraded, 2 failed), as C(scripts/check-cluster.sh) exits.
  returned: always
  type: int
  sample: 1
counts:
  description: Number of findings per severity.
  returned: always
  type: dict
  sample: {ok: 12, unknown: 2, degraded: 1, failed: 0}
findings:
  description: Every finding, with C(area), C(subject), C(severity) (ok, unknown, degraded, failed) and C(message).
  returned: always
  type: list
  elements: dict
  sample: [{area: nodes, subject: spark-ba63, severity: degraded, message: "Ready, kubelet v1.31.14, GPUs 0; GPUs allocatable 0 of 1 expected"}]
failures:
  description: "The failed findings, one line each: C(area subject: message)."
  returned: always
  type: list
  elements: str
  sample: ["nodes spark-ba63: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)"]
degradations:
  description: "The degraded findings, one line each: C(area subject: message)."
  returned: always
  type: list
  elements: str
  sample: ["services apps/open-webui: LoadBalancer without an address (pending)"]
text:
  description: The table a person reads, one line per problem and one per area for what is ok.
  returned: always
  type: str
generated:
  description: When the report was made (UTC, RFC 3339).
  returned: always
  type: str
report:
  description: Everything above in one dictionary (what the C(health) role writes as JSON).
  returned: always
  type: dict
api_nodes:
  description:
    - The Node objects the report read, without their bulk (C(metadata.managedFields), C(status.images)); null when
      the API could not list them. C(check-cluster.yml) gives each worker's membership judge its own.
  returned: always
  type: list
  elements: dict
"""

import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import health as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import health_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                gpus=dict(type="int", default=0),
                address=dict(type="str", default=""),
            )),
            addons=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                enabled=dict(type="bool", default=True),
                release_name=dict(type="str"),
                release_namespace=dict(type="str"),
                namespaces=dict(type="list", elements="str", default=[]),
            )),
            longhorn_namespace=dict(type="str"),
            certificates=dict(type="bool", default=True),
            cert_warning_days=dict(type="int", default=30),
            roce_verdict=dict(type="dict"),
            nccl_verdict=dict(type="dict"),
            nccl_source=dict(type="str"),
            node_checks=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                unreachable=dict(type="bool", default=False),
                unreachable_msg=dict(type="str"),
                membership=dict(type="dict"),
                fabric=dict(type="dict"),
                cni=dict(type="dict"),
                roce=dict(type="dict"),
            )),
            warn=dict(type="bool", default=True),
            kubeconfig=dict(type="path", default="/etc/kubernetes/admin.conf"),
            kubectl=dict(type="str", default="kubectl"),
            kubeadm=dict(type="str", default="kubeadm"),
            timeout=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    runner = CommandRunner(module, default_timeout=params["timeout"] + 10)
    kubectl = params["kubectl"] if "/" in params["kubectl"] else runner.binary(params["kubectl"])
    kubeadm = params["kubeadm"]
    if params["certificates"] and "/" not in kubeadm:
        kubeadm = runner.binary(kubeadm, required=False)
        if not kubeadm:
            params.update(certificates=False, certificates_off_reason="%s not found" % params["kubeadm"])
    reader = health_io.Reader(runner, kubectl, params["kubeconfig"], kubeadm, params["timeout"])
    inputs = health_io.gather(reader, params)
    inputs.update(roce_verdict=params["roce_verdict"], nccl_verdict=params["nccl_verdict"],
                  nccl_source=params["nccl_source"], node_checks=params["node_checks"])
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    result = core.report(inputs, now, params["cert_warning_days"])
    if result["status"] == "degraded" and params["warn"]:
        module.warn("cluster health is DEGRADED: %s" % "; ".join(result["degradations"]))
    # The Nodes as read, for each worker's membership judge (check-cluster.yml reads the cluster once).
    api_nodes = [core.node_view(node) for node in inputs["nodes"]] if inputs.get("nodes") is not None else None
    module.exit_json(changed=False, report=result, api_nodes=api_nodes, **result)


if __name__ == "__main__":
    main()
