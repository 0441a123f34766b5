#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cni_cleanup
short_description: Remove stale CNI state that breaks pod networking, without a full reset
version_added: "0.1.0"
description:
  - Finds and removes stale C(cni-*) network namespaces, leftover C(/var/lib/cni) entries and Calico links left behind
    by them, then restarts the container runtime and the kubelet when it removed anything.
  - "A C(cni-*) namespace file is B(stale) when opening or stat-ing it fails (EIO, C(Invalid argument): the classic
    C(network namespace ... EIO) symptom), when it is no longer a mounted network namespace (C(ip netns) then prints
    C(Peer netns reference is invalid)), or when it is a namespace that no process is in or holds open
    (C(/proc/<pid>/ns/net) and C(/proc/<pid>/fd/*) compared by inode). A running pod sandbox always has its pause
    process in its namespace, so its namespace is never touched."
  - Files younger than O(min_age) are kept (a sandbox being created has a namespace before its pause process starts).
  - A state entry is stale when its container id is not a sandbox that C(crictl pods) lists (ready or not). When
    crictl cannot answer, every state entry is kept.
  - "A link matching O(interfaces) is removed when its peer namespace is one being removed (Calico's C(cali*) veths);
    host-level devices such as C(vxlan.calico) and C(tunl0) only with O(only_stale=false)."
  - Namespaces are removed as C(ip netns delete) does it (lazy unmount, then delete the file), so any directory in
    O(netns_dir) works.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  netns_dir:
    description:
      - Directories holding named network namespaces. Only C(cni-*) entries are considered. A directory that resolves to
        one already listed (C(/var/run) is usually a link to C(/run)) is read once.
    type: list
    elements: path
    default: [/run/netns, /var/run/netns]
  state_dirs:
    description:
      - CNI state directories whose entries (files up to one sub-directory deep) carry a container id.
    type: list
    elements: path
    default: [/var/lib/cni/networks, /var/lib/cni/results]
  interfaces:
    description:
      - Link name patterns (shell-style) of CNI leftovers.
    type: list
    elements: str
    default: ["cali*", "vxlan.calico", "tunl0"]
  only_stale:
    description:
      - V(true) removes only what is proven stale and never touches a namespace a process uses.
      - V(false) removes B(every) C(cni-*) namespace, every state entry and every matching link. Use it only with the
        kubelet and the runtime stopped (the forced reset of M(dgx_spark.cluster.kubeadm_node) does the same).
    type: bool
    default: true
  min_age:
    description:
      - Seconds a namespace file must exist before it can be judged unused (ignored with O(only_stale=false) and for
        files that cannot be opened).
    type: int
    default: 60
  cri_socket:
    description: The CRI endpoint C(crictl) asks for the live sandboxes.
    type: str
    default: unix:///run/containerd/containerd.sock
  restart_services:
    description:
      - systemd units restarted, in order, when anything was removed.
    type: list
    elements: str
    default: [containerd, kubelet]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode reports in RV(removed) exactly what would go and in RV(restarted) what would be restarted.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Linux with systemd (it reads /proc and drives units with systemctl).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Needs root to read every process's namespaces; when the C(/proc) scan is incomplete, nothing that still is a valid
    namespace is removed.
seealso:
  - module: dgx_spark.cluster.kubeadm_node
"""

EXAMPLES = r"""
- name: Remove stale CNI namespaces and leftovers (safe on a running node)
  dgx_spark.cluster.cni_cleanup:
  register: cni

- name: Show what would go, without changing anything
  dgx_spark.cluster.cni_cleanup:
  check_mode: true
  diff: true

- name: Clean everything (only with the kubelet and the runtime stopped)
  dgx_spark.cluster.cni_cleanup:
    only_stale: false
    restart_services: []
"""

RETURN = r"""
removed:
  description: What was removed (in check mode, what would be).
  returned: always
  type: dict
  contains:
    netns:
      description: Namespace files.
      type: list
      elements: str
      sample: [/run/netns/cni-b61067e2-ec37-9b02-971c-166c54468ea4]
    paths:
      description: State entries.
      type: list
      elements: str
      sample: [/var/lib/cni/results/k8s-pod-network-e0f6665744e6f48928559cbfb3662c9d21a009331801da410c8152b2d37cdd0e-eth0]
    links:
      description: Network links.
      type: list
      elements: str
      sample: [cali3d5c8e4e9a1]
kept:
  description: What was looked at and stays, with why.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "netns", "name": "/run/netns/cni-45b9e5e5-8d10-10e3-d4cc-8d3fadea0ee0",
            "reason": "in use by running process(es) 4242"}]
restarted:
  description: Services restarted (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [containerd, kubelet]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni, cni_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

ARGUMENT_SPEC = dict(
    netns_dir=dict(type="list", elements="path", default=list(cni.DEFAULT_NETNS_DIRS)),
    state_dirs=dict(type="list", elements="path", default=list(cni.DEFAULT_STATE_DIRS)),
    interfaces=dict(type="list", elements="str", default=list(cni.DEFAULT_INTERFACES)),
    only_stale=dict(type="bool", default=True),
    min_age=dict(type="int", default=60),
    cri_socket=dict(type="str", default="unix:///run/containerd/containerd.sock"),
    restart_services=dict(type="list", elements="str", default=list(cni.DEFAULT_RESTART)),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    runner = CommandRunner(module)
    facts = cni_io.gather_facts(runner, p["netns_dir"], p["state_dirs"], p["cri_socket"])
    plan = cni.plan_cleanup(facts, only_stale=p["only_stale"], interfaces=p["interfaces"], min_age=p["min_age"])
    result = cni.planned_result(plan, p["restart_services"])
    if module._diff:
        result["diff"] = cni.plan_diff(facts, plan)
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    removed, errors = cni_io.remove_planned(runner, plan, module.warn)
    result.update(removed=removed, changed=any(removed.values()), restarted=[])
    if errors:
        module.fail_json(msg=cni.removal_failure(errors), **result)
    if result["changed"]:
        result["restarted"] = cni_io.restart_services(runner, p["restart_services"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
