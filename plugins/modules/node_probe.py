#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: node_probe
short_description: Report, in one call, what node preparation would have to change on a Kubernetes node
version_added: 0.1.0
description:
  - Reads swap, kernel modules, sysctls, the containerd configuration, the Kubernetes packages and the runtime
    services, and returns the concerns that drifted from the desired state with a plain reason for each.
  - Never changes anything. The C(node_prep) role runs it first and then only the fix tasks of the concerns that
    drifted, so a prepared node costs one task.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  swap_off:
    description: Swap must be off now and not turned on at boot by C(/etc/fstab).
    type: bool
    default: true
  kernel_modules:
    description: Kernel modules that must be available (loaded or built in) and listed in O(modules_load_file).
    type: list
    elements: str
    default: []
  modules_load_file:
    description: The modules-load.d file that loads O(kernel_modules) at boot, one name per line.
    type: path
    default: /etc/modules-load.d/dgx-spark-kubernetes.conf
  sysctls:
    description: Kernel parameters and their values, at run time and in O(sysctl_file).
    type: dict
    default: {}
  sysctl_file:
    description: The sysctl.d file that persists O(sysctls).
    type: path
    default: /etc/sysctl.d/99-dgx-spark-kubernetes.conf
  containerd_config_path:
    description: Path of the containerd configuration.
    type: path
    default: /etc/containerd/config.toml
  containerd_config:
    description: Desired content of O(containerd_config_path) without the NVIDIA runtime. Not compared when omitted.
    type: str
  containerd_config_nvidia:
    description: Desired content when O(nvidia_runtime_binary) exists on the node.
    type: str
  nvidia_runtime_binary:
    description: The NVIDIA container runtime; when present, O(containerd_config_nvidia) is the desired content.
    type: path
    default: /usr/bin/nvidia-container-runtime
  files:
    description: Files whose whole content is managed (for example C(/etc/default/kubelet)).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path on the node.
        type: path
        required: true
      content:
        description: The desired content.
        type: str
        required: true
  packages:
    description: Packages that must be installed (and held when O(hold)).
    type: list
    elements: str
    default: []
  package_version:
    description: Version prefix the packages must match, for example V(1.31) for any 1.31.x.
    type: str
  hold:
    description: The packages must be held so that an unattended upgrade cannot move them.
    type: bool
    default: true
  services:
    description: systemd units that must be active and enabled.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing to show; the drift reasons are the result.
  idempotent:
    support: full
    description: Never changes anything.
notes:
  - A kernel module counts as available when C(/sys/module/<name>) exists, or for C(br_netfilter) when
    C(/proc/sys/net/bridge) exists (built-in modules without parameters have no C(/sys/module) entry).
"""

EXAMPLES = r"""
- name: What would node preparation change?
  dgx_spark.cluster.node_probe:
    kernel_modules: [overlay, br_netfilter]
    sysctls:
      net.ipv4.ip_forward: "1"
    packages: [kubeadm, kubelet, kubectl]
    package_version: "1.31"
    services: [containerd]
  register: probe

- name: Only when packages drifted
  ansible.builtin.debug:
    msg: "{{ probe.drift.packages }}"
  when: "'packages' in probe.drift"
"""

RETURN = r"""
drift:
  description: Concerns that differ from the desired state (C(swap), C(modules), C(sysctl), C(containerd),
    C(files), C(packages), C(services)), each with its reasons. Empty when the node is prepared.
  returned: always
  type: dict
  sample: {"sysctl": ["sysctl net.ipv4.ip_forward is 0, wants 1"]}
nvidia_runtime:
  description: Whether the NVIDIA container runtime exists, and so which containerd content is desired.
  returned: always
  type: bool
drifted_files:
  description: Paths from O(files) whose content differs or that are missing.
  returned: always
  type: list
  elements: str
missing_modules:
  description: Kernel modules from O(kernel_modules) that are neither loaded nor built in.
  returned: always
  type: list
  elements: str
active_swaps:
  description: Swap devices in use.
  returned: always
  type: list
  elements: str
packages:
  description: Installed version and dpkg selection (C(install), C(hold)) of each requested package.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils import node_probe as core


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def module_available(name):
    if os.path.isdir("/sys/module/%s" % name):
        return True
    return name == "br_netfilter" and os.path.isdir("/proc/sys/net/bridge")


def gather(module, runner):
    params = module.params
    facts = {
        "proc_swaps": read("/proc/swaps"),
        "fstab": read("/etc/fstab"),
        "modules_available": set(name for name in params["kernel_modules"] if module_available(name)),
        "modules_load": read(params["modules_load_file"]),
        "sysctl_file": read(params["sysctl_file"]),
        "containerd_config": read(params["containerd_config_path"]),
    }
    runtime = {}
    for name in params["sysctls"]:
        value = read("/proc/sys/%s" % name.replace(".", "/"))
        if value is not None:
            runtime[name] = value.strip()
    facts["sysctl_runtime"] = runtime
    if params["packages"]:
        dpkg = runner.binary("dpkg-query")
        unused_rc, out, unused_err = runner.run(
            [dpkg, "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n"] + params["packages"], check=False)
        facts["packages"] = core.parse_dpkg_query(out)
    services = {}
    if params["services"]:
        systemctl = runner.binary("systemctl")
        for unit in params["services"]:
            unused_rc, active, unused_err = runner.run([systemctl, "is-active", unit], check=False)
            unused_rc, enabled, unused_err = runner.run([systemctl, "is-enabled", unit], check=False)
            services[unit] = (active.strip(), enabled.strip())
    facts["services"] = services
    return facts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            swap_off=dict(type="bool", default=True),
            kernel_modules=dict(type="list", elements="str", default=[]),
            modules_load_file=dict(type="path", default="/etc/modules-load.d/dgx-spark-kubernetes.conf"),
            sysctls=dict(type="dict", default={}),
            sysctl_file=dict(type="path", default="/etc/sysctl.d/99-dgx-spark-kubernetes.conf"),
            containerd_config_path=dict(type="path", default="/etc/containerd/config.toml"),
            containerd_config=dict(type="str"),
            containerd_config_nvidia=dict(type="str"),
            nvidia_runtime_binary=dict(type="path", default="/usr/bin/nvidia-container-runtime"),
            files=dict(type="list", elements="dict", default=[],
                       options=dict(path=dict(type="path", required=True), content=dict(type="str", required=True))),
            packages=dict(type="list", elements="str", default=[]),
            package_version=dict(type="str"),
            hold=dict(type="bool", default=True),
            services=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = CommandRunner(module, default_timeout=30)
    facts = gather(module, runner)
    nvidia = os.path.exists(params["nvidia_runtime_binary"])
    wanted_config = params["containerd_config_nvidia"] if nvidia and params["containerd_config_nvidia"] else params["containerd_config"]
    wanted = dict(
        swap_off=params["swap_off"],
        kernel_modules=params["kernel_modules"],
        sysctls=dict((k, str(v)) for k, v in params["sysctls"].items()),
        containerd_config_path=params["containerd_config_path"],
        containerd_config=wanted_config,
        packages=params["packages"],
        package_version=params["package_version"],
        hold=params["hold"],
    )
    drift = core.probe(facts, wanted)
    drifted_files = []
    for managed in params["files"]:
        reasons = core.file_drift(managed["path"], read(managed["path"]), managed["content"])
        if reasons:
            drifted_files.append(managed["path"])
            drift.setdefault("files", []).extend(reasons)
    module.exit_json(
        changed=False,
        drift=drift,
        nvidia_runtime=nvidia,
        drifted_files=drifted_files,
        missing_modules=[name for name in params["kernel_modules"] if name not in facts["modules_available"]],
        active_swaps=core.active_swaps(facts["proc_swaps"]),
        packages=dict((name, {"version": v[0], "selection": v[1], "installed": v[2]})
                      for name, v in facts.get("packages", {}).items()),
    )


if __name__ == "__main__":
    main()
