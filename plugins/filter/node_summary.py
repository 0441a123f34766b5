# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: node_summary
short_description: One line per Node and the GPU warnings, for the end of a run
version_added: 0.2.0
author: dgx_spark.cluster contributors
description:
  - Summarises Nodes as M(kubernetes.core.k8s_info) returns them, one line each (Ready, kubelet version, GPUs
    allocatable, cordoned or uncordoned now), and warns for each Node with fewer allocatable C(nvidia.com/gpu)
    than the inventory expects.
  - The companion filter C(cordoned_by_us) lists the Nodes that stop-cluster or sleep-cluster cordoned (their
    C(dgx-spark.cluster/cordoned-by) annotation, whatever its value).
  - The companion filter C(not_ready) takes the Nodes, the inventory's node names and what the run tried per node,
    and returns C([{name, line}]) for each node that is missing or not Ready (the Node's Ready condition with reason,
    message and since when, and the attempts). C(membership_attempts) turns a node's hostvars and a list of
    registered plan names into those attempts (C(action because reasons), skipping plans that were C(none)).
options:
  _input:
    description: The Node objects (C(resources) of M(kubernetes.core.k8s_info)).
    type: list
    elements: dict
    required: true
  expected_gpus:
    description: Node name to the number of GPUs the inventory expects.
    type: dict
  uncordoned:
    description: Names of the Nodes this run uncordoned.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Summary
  ansible.builtin.debug:
    msg: "{{ (_nodes.resources | dgx_spark.cluster.node_summary({'spark-2959': 1})).lines }}"
"""

RETURN = r"""
_value:
  description: C(lines) (one per Node) and C(warnings) (GPU shortfalls).
  type: dict
"""

from ansible_collections.dgx_spark.cluster.plugins.module_utils.summary import (
    cordoned_by_us, membership_attempts, node_summary, not_ready)


class FilterModule(object):
    def filters(self):
        return {"node_summary": node_summary, "cordoned_by_us": cordoned_by_us, "not_ready": not_ready,
                "membership_attempts": membership_attempts}
