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

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni


def gather(module, runner):
    """Observe (reads and read-only commands only)."""
    p = module.params
    nsfs_dev = cni.nsfs_device()
    facts = {"netns": cni.observe_netns(p["netns_dir"], time.time(), nsfs_dev)}
    facts["live"], facts["unreadable"] = cni.observe_live_netns(nsfs_dev=nsfs_dev)
    facts["live_complete"] = not facts["unreadable"]
    ip = runner.binary("ip")
    rc, out, _err = runner.run(cni.ip_netns_list_argv(ip), check=False)
    facts["netns_ids"] = dict((n["name"], n["id"]) for n in cni.parse_ip_netns(out)["netns"]) if rc == 0 else {}
    rc, out, _err = runner.run(cni.ip_link_show_argv(ip), check=False)
    try:
        facts["links"] = cni.parse_ip_link_json(out) if rc == 0 else []
    except ValueError:
        facts["links"] = []
    crictl = runner.binary("crictl", required=False, extra_paths=["/usr/bin", "/usr/local/bin"])
    facts["sandboxes"], facts["sandboxes_error"] = None, "crictl not found"
    if crictl:
        rc, out, err = runner.run(cni.crictl_pods_argv(crictl, p["cri_socket"]), check=False, timeout=30)
        try:
            if rc == 0:
                facts["sandboxes"] = [pod["id"] for pod in cni.parse_crictl_pods_json(out) if pod["id"]]
            else:
                facts["sandboxes_error"] = "crictl pods rc %s: %s" % (rc, (err or out or "").strip()[:200])
        except (ValueError, AttributeError):
            facts["sandboxes_error"] = "crictl pods printed no JSON"
    facts["state_entries"] = cni.observe_state_entries(p["state_dirs"])
    return facts


def apply(module, runner, plan):
    """Remove what the plan says; returns (removed, errors)."""
    removed = {"netns": [], "paths": [], "links": []}
    errors = []
    ip = runner.binary("ip")
    for name in plan["remove"]["links"]:
        rc, out, err = runner.run(cni.ip_link_delete_argv(ip, name), check=False)
        if rc == 0:
            removed["links"].append(name)
        else:  # a veth goes with its namespace; tunl0 cannot be deleted while the ipip module is loaded
            module.warn("ip link delete %s failed (rc %s): %s" % (name, rc, (err or out).strip()))
    umount = runner.binary("umount", extra_paths=["/usr/bin", "/bin"])
    mountpoints = set(cni.read_mountpoints())
    for path in plan["remove"]["netns"]:
        error = cni.remove_netns_file(path, runner, umount, mountpoints)
        if error:
            errors.append("%s: %s" % (path, error))
        else:
            removed["netns"].append(path)
    for path in plan["remove"]["paths"]:
        error = cni.remove_state_path(path)
        if error:
            errors.append("%s: %s" % (path, error))
        else:
            removed["paths"].append(path)
    return removed, errors


def run_module(module):
    p = module.params
    runner = CommandRunner(module)
    facts = gather(module, runner)
    plan = cni.plan_cleanup(facts, only_stale=p["only_stale"], interfaces=p["interfaces"], min_age=p["min_age"])
    would_change = not cni.plan_is_empty(plan)
    result = dict(changed=would_change, removed=plan["remove"], kept=plan["kept"],
                  restarted=list(p["restart_services"]) if would_change else [])
    if module._diff:
        before = {"netns": sorted(n["path"] for n in facts["netns"]),
                  "paths": sorted(e["path"] for e in facts["state_entries"]),
                  "links": sorted(k["name"] for k in plan["kept"] if k["kind"] == "link") + plan["remove"]["links"]}
        after = dict((key, [x for x in before[key] if x not in plan["remove"][key]]) for key in before)
        result["diff"] = dict(before=before, after=after)
    if module.check_mode or not would_change:
        module.exit_json(**result)
    removed, errors = apply(module, runner, plan)
    result["removed"] = removed
    result["changed"] = any(removed.values())
    result["restarted"] = []
    if errors:
        module.fail_json(msg="could not remove all stale CNI state: %s" % "; ".join(errors), **result)
    if result["changed"]:
        systemctl = runner.binary("systemctl")
        for unit in p["restart_services"]:
            runner.run(cni.systemctl_restart_argv(systemctl, unit), timeout=180,
                       msg="restarting %s after the CNI cleanup failed" % unit)
            result["restarted"].append(unit)
    module.exit_json(**result)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            netns_dir=dict(type="list", elements="path", default=list(cni.DEFAULT_NETNS_DIRS)),
            state_dirs=dict(type="list", elements="path", default=list(cni.DEFAULT_STATE_DIRS)),
            interfaces=dict(type="list", elements="str", default=list(cni.DEFAULT_INTERFACES)),
            only_stale=dict(type="bool", default=True),
            min_age=dict(type="int", default=60),
            cri_socket=dict(type="str", default="unix:///run/containerd/containerd.sock"),
            restart_services=dict(type="list", elements="str", default=list(cni.DEFAULT_RESTART)),
        ),
        supports_check_mode=True,
    )


def main():
    run_module(build_module())


if __name__ == "__main__":
    main()
