#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kubeadm_node
short_description: Bring one node to its desired kubeadm membership
version_added: "0.1.0"
description:
  - Decides from the node's local kubeadm/kubelet state B(and) the API's view of its Node object whether the node
    needs nothing, a kubelet restart, a join, a reset and re-join, an init (control plane only, and only when no
    cluster exists) or a reset (only with O(state=reset)), then does exactly that, with timeouts.
  - "Local state read on the node: C(/etc/kubernetes/kubelet.conf) (present, its API server URL, the CA it trusts,
    its C(system:node:<name>) identity), C(/etc/kubernetes/pki/ca.crt) (the kubeadm CA pin C(sha256:<hex>) of its
    public key), C(/var/lib/kubelet/config.yaml), the kubelet service (C(systemctl is-active), C(is-enabled) and how
    long it has been active), the CRI socket, and on a control plane C(/etc/kubernetes/manifests/kube-apiserver.yaml),
    C(/etc/kubernetes/admin.conf) and C(/var/lib/etcd/member)."
  - The module never talks to the API itself. The caller passes the Node as M(kubernetes.core.k8s_info) returned it
    (O(api_node)), and for a control plane whether a cluster answers (O(cluster_exists)).
  - The decision table is in the collection's docs (C(docs/kubeadm_node.md)); every row is unit-tested.
  - A forced reset (O(reset_fallback)) runs when C(kubeadm reset -f) fails or hangs. It kills and stops the kubelet
    (a kubelet that does not stop makes C(kubeadm reset) hang), stops the runtime, kills stuck C(kubeadm) processes,
    lazily unmounts everything below C(/var/lib/kubelet) (deepest first),
    removes only kubeadm, kubelet and CNI state (never crossing a mount point, never data such as
    C(/var/lib/longhorn)), removes C(cni-*) network namespaces, and starts the runtime again.
  - The join token never appears in results, errors or logs.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  role:
    description:
      - What this node is. A control plane is never joined or reset-and-joined; a worker is never initialised.
    type: str
    required: true
    choices: [control_plane, worker]
  state:
    description:
      - V(present) brings the node into the cluster (or keeps it there).
      - V(reset) runs C(kubeadm reset) (and the forced reset when needed); nothing happens when no kubeadm state is left.
    type: str
    default: present
    choices: [present, reset]
  node_name:
    description:
      - The Node name. Compared with the identity in C(kubelet.conf) and passed to C(kubeadm join --node-name).
      - Defaults to the host name in lower case, as kubeadm does.
    type: str
  api_node:
    description:
      - The Node object as the API sees it B(at call time), as M(kubernetes.core.k8s_info) returns it (the Node dict,
        or the whole k8s_info result with its C(resources) list).
      - V(null) or omitted means the API answered and there is no such Node. When the caller deletes a stale Node
        before calling, it passes the view after the deletion (V(null)).
      - Only the Ready condition (status and C(lastTransitionTime)) is used.
    type: raw
  cluster_exists:
    description:
      - Whether the cluster's API answers.
      - For O(role=control_plane) it is required when no control-plane files exist on the node; V(init) is only planned
        when it is V(false).
      - For O(role=worker), V(false) forbids any reset or join (a join against an API that is down would leave the
        node reset and not joined); omitted means the API answered (the caller got O(api_node) from it).
    type: bool
  api_endpoint:
    description:
      - The API server endpoint to join, C(host:port). Also compared with the server URL in C(kubelet.conf).
      - Required when a join is planned.
    type: str
  token:
    description:
      - The bootstrap token for C(kubeadm join). Required when a join is planned. Never returned or logged.
    type: str
  ca_cert_hash:
    description:
      - The cluster CA pin, C(sha256:<hex>) (what C(kubeadm token create --print-join-command) prints).
      - Required when a join is planned. When given, a C(kubelet.conf) or C(pki/ca.crt) trusting another CA means the
        node belongs to another cluster and is reset and re-joined.
    type: str
  init_config:
    description:
      - Path on the node to the kubeadm configuration file for C(kubeadm init --config). Required when init is planned.
    type: path
  cri_socket:
    description:
      - The CRI endpoint passed to kubeadm (C(--cri-socket)) and awaited before a join or init.
    type: str
    default: unix:///run/containerd/containerd.sock
  runtime_service:
    description:
      - The container runtime's systemd unit, stopped and started again by the forced reset.
    type: str
    default: containerd
  reset_timeout:
    description: Seconds C(kubeadm reset -f) may take before it is killed (and the forced reset runs).
    type: int
    default: 120
  join_timeout:
    description: Seconds C(kubeadm join) may take.
    type: int
    default: 420
  init_timeout:
    description: Seconds C(kubeadm init) may take.
    type: int
    default: 600
  cri_socket_timeout:
    description: Seconds to wait for the CRI socket to appear before a join or init, and after the forced reset.
    type: int
    default: 30
  reset_fallback:
    description:
      - Run the forced reset when C(kubeadm reset -f) fails or times out. With V(false) such a failure fails the task.
    type: bool
    default: true
  kubelet_ready_grace:
    description:
      - Seconds a worker whose kubelet is active and whose membership files are consistent may have a Node that is not
        Ready (C(Unknown) when its status does not reach the API, C(False) when the kubelet reports NotReady) before
        it is repaired. Measured from the later of the Ready condition's C(lastTransitionTime) and the moment the kubelet
        became active.
      - Past the grace the module reads the node's diagnosis (whether it reaches O(api_endpoint), the runtime's own
        conditions, the kubelet's recent errors) and plans the first step, V(restart_kubelet). A node that cannot
        reach the API fails with the diagnosis instead (neither step can fix that).
    type: int
    default: 90
  kubelet_restarted:
    description:
      - The caller already restarted the kubelet in this run because the Node was not Ready, and waited for it. The
        grace no longer applies and the plan takes the next step, V(reset_and_join) when the Node is still
        C(Unknown); a failure with the diagnosis when the kubelet itself reports C(False) (a re-join cannot fix
        that) or the node cannot reach the API.
    type: bool
    default: false
  operator_kubeconfig:
    description:
      - On a control plane, a copy of C(/etc/kubernetes/admin.conf) that an operator uses (for example
        C(~spark/.kube/config)). Only read, after the action; the result says whether it is present, identical to
        C(admin.conf), mode C(0600) and owned by O(operator_user), so a role copies it only when it is not.
    type: path
  operator_user:
    description:
      - Owner expected for O(operator_kubeconfig).
    type: str
  root:
    description:
      - Prefix for every local path the module reads or removes. V(/) on a real node; tests use a temporary directory.
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode reads files and runs only read-only commands (C(systemctl is-active), C(is-enabled), C(show),
      C(openssl x509)) and returns the planned RV(action). Missing join data is reported in RV(missing), not a failure.
  diff_mode:
    support: full
    details: The diff is the local-state summary before and as predicted after the action.
  platform:
    support: full
    platforms: posix
    details: Linux with systemd (it reads /proc and drives units with systemctl).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details: A second run with a refreshed O(api_node) plans V(none). The decision depends on O(api_node), so passing
      a stale view (for example V(null) for a Node that has since registered) plans a re-join again.
notes:
  - Needs root (it reads C(/etc/kubernetes/pki) and runs kubeadm).
  - Uses the C(cryptography) Python library for the CA pin when importable, else C(openssl x509 -noout -pubkey).
seealso:
  - module: dgx_spark.cluster.cni_cleanup
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Read the worker's Node object
  kubernetes.core.k8s_info:
    kind: Node
    name: spark-ba63
  delegate_to: spark-2959
  register: worker_node

- name: Join, repair or leave the worker as it is
  dgx_spark.cluster.kubeadm_node:
    role: worker
    node_name: spark-ba63
    api_node: "{{ worker_node.resources | first | default(none) }}"
    api_endpoint: 10.10.10.1:6443
    token: "{{ _worker_join_token }}"
    ca_cert_hash: "{{ _worker_ca_cert_hash }}"
    kubelet_ready_grace: 90
  register: membership

- name: Start the control plane, or init it when no cluster exists
  dgx_spark.cluster.kubeadm_node:
    role: control_plane
    node_name: spark-2959
    cluster_exists: "{{ _control_plane_api_answers }}"
    init_config: /etc/kubernetes/kubeadm-config.yaml

- name: Reset a node (destructive; the playbook asks for an explicit confirmation variable)
  dgx_spark.cluster.kubeadm_node:
    role: worker
    state: reset
"""

RETURN = r"""
action:
  description: The action taken, or planned in check mode.
  returned: always
  type: str
  sample: reset_and_join
  choices: [none, restart_kubelet, join, reset_and_join, init, reset]
reasons:
  description: Why that action (human-readable).
  returned: always
  type: list
  elements: str
  sample: ["Node spark-ba63 does not exist in the API although kubelet.conf is present"]
local:
  description:
    - The local-state summary the decision was made from (before acting).
    - For a worker whose Node exists but is not Ready it also holds C(diagnosis) (C(api_reachable), C(api_error),
      C(runtime_conditions), C(kubelet_errors)), what the reasons quote.
  returned: always
  type: dict
  sample:
    kubelet_conf: true
    kubelet_conf_server: https://10.10.10.1:6443
    kubelet_conf_ca_hash: "sha256:91f646b4fa8a0b69811ad1c412258c41fd76b7940d1a13802898728d8b5474c7"
    kubelet_conf_node: spark-ba63
    bootstrap_kubelet_conf: false
    ca_crt: true
    ca_crt_hash: "sha256:91f646b4fa8a0b69811ad1c412258c41fd76b7940d1a13802898728d8b5474c7"
    kubelet_config: true
    apiserver_manifest: false
    manifests_nonempty: false
    admin_conf: false
    etcd_data: false
    kubelet_active: active
    kubelet_enabled: enabled
    kubelet_active_seconds: 5321.4
    cri_socket: unix:///run/containerd/containerd.sock
    cri_socket_present: true
node_name:
  description: The Node name used.
  returned: always
  type: str
  sample: spark-ba63
restart_running:
  description:
    - Whether a V(restart_kubelet) restarts a kubelet that is running (its Node has been not Ready past
      O(kubelet_ready_grace)); the caller then waits for Ready and, if it does not come, plans again with
      O(kubelet_restarted=true).
  returned: always
  type: bool
  sample: false
fallback_used:
  description: Whether the forced reset ran because C(kubeadm reset -f) failed or timed out.
  returned: always
  type: bool
  sample: false
duration:
  description: Seconds the module ran.
  returned: always
  type: float
  sample: 41.7
missing:
  description: In check mode, the join options (token, CA hash, endpoint) that a real run of the planned action
    would need and were not given. A real run fails with this message instead.
  returned: in check mode, when a planned join lacks options
  type: str
  sample: "planned reset_and_join (...), but this option is missing: token"
static_pods:
  description: On a control plane (O(state=present)), the state of each static pod's newest container as
    C(crictl ps -a -o json) reports it after the action (C(CONTAINER_RUNNING) when healthy; null when it has no
    container). Empty when C(crictl) is missing or fails.
  returned: when O(role=control_plane) and O(state=present)
  type: dict
  sample: {"etcd": "CONTAINER_RUNNING", "kube-apiserver": "CONTAINER_RUNNING",
           "kube-controller-manager": "CONTAINER_RUNNING", "kube-scheduler": "CONTAINER_RUNNING"}
delete_api_node:
  description: A planned C(join) or C(reset_and_join) needs the Node object deleted from the API first (it still
    exists; kubeadm join refuses a Ready Node of the same name). The module never talks to the API; the caller
    deletes it and calls again with O(api_node) as the API shows it afterwards.
  returned: always
  type: bool
  sample: true
operator_kubeconfig_current:
  description: Whether O(operator_kubeconfig) is present, identical to C(admin.conf), mode C(0600) and owned by
    O(operator_user).
  returned: when O(operator_kubeconfig) is given
  type: bool
  sample: true
commands:
  description: The commands run (join token redacted), with return code and seconds.
  returned: always
  type: list
  elements: dict
  sample: [{"cmd": "kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock", "rc": 0, "seconds": 6.2}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import kubeadm as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils.kubeadm_io import run_module


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            role=dict(type="str", required=True, choices=list(core.ROLES)),
            state=dict(type="str", default="present", choices=list(core.STATES)),
            node_name=dict(type="str"),
            api_node=dict(type="raw"),
            cluster_exists=dict(type="bool"),
            api_endpoint=dict(type="str"),
            token=dict(type="str", no_log=True),
            ca_cert_hash=dict(type="str"),
            init_config=dict(type="path"),
            cri_socket=dict(type="str", default=core.DEFAULT_CRI_SOCKET),
            runtime_service=dict(type="str", default="containerd"),
            reset_timeout=dict(type="int", default=120),
            join_timeout=dict(type="int", default=420),
            init_timeout=dict(type="int", default=600),
            cri_socket_timeout=dict(type="int", default=30),
            reset_fallback=dict(type="bool", default=True),
            kubelet_ready_grace=dict(type="int", default=90),
            kubelet_restarted=dict(type="bool", default=False),
            operator_kubeconfig=dict(type="path"),
            operator_user=dict(type="str"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def main():
    run_module(build_module())


if __name__ == "__main__":
    main()
