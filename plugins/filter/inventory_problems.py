# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: inventory_problems
short_description: Every problem and warning in the DGX Spark cluster inventory
version_added: 0.1.0
author: dgx_spark.cluster contributors
description:
  - Checks the inventory as a whole, before anything changes, and returns one plain message per problem
    in C(problems) (empty when it is sound), and risks an existing cluster may live with in C(warnings).
  - Exactly one control-plane node, at least one worker, valid networks that do not overlap (LAN, each fabric
    half, pod and service CIDRs), every node address inside its subnet, no address used twice, the API address
    on the control plane's first fabric half, a MetalLB pool inside the LAN that holds no node address, valid
    Wake-on-LAN MACs and a fabric MTU Linux accepts.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  groups:
    description: C(groups), used for C(spark_cluster), C(control_plane) and C(workers).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail with every inventory problem at once
  ansible.builtin.assert:
    that: _check.problems | length == 0
    fail_msg: "{{ _check.problems }}"
  vars:
    _check: "{{ hostvars | dgx_spark.cluster.inventory_problems(groups) }}"
"""

RETURN = r"""
_value:
  description: C(problems) (one message each; empty when the inventory is sound) and C(warnings).
  type: dict
"""

from ansible_collections.dgx_spark.cluster.plugins.module_utils.inventory_checks import check_inventory

NODE_KEYS = ("spark_lan_ip", "spark_fabric_addresses", "spark_wol_mac")
SETTING_KEYS = ("spark_lan_subnet", "fabric_ports", "fabric_mtu", "kubernetes_pod_cidr", "kubernetes_service_cidr",
                "kubernetes_api_address", "kubernetes_api_port", "metallb_address_pool")


def inventory_problems(hostvars, groups):
    members = list(groups.get("spark_cluster") or [])
    nodes = {}
    for name in members:
        host = hostvars[name]
        nodes[name] = dict((key, host.get(key)) for key in NODE_KEYS)
    first = hostvars[members[0]] if members else {}
    settings = dict((key, first.get(key)) for key in SETTING_KEYS)
    problems, warnings = check_inventory(nodes, settings, groups)
    return {"problems": problems, "warnings": warnings}


class FilterModule(object):
    def filters(self):
        return {"inventory_problems": inventory_problems}
