# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: overlapping_cidrs
short_description: The parts of a pod network that other ranges cover, as the fewest CIDRs
version_added: 0.2.0
author: dgx_spark.cluster contributors
description:
  - What Calico must reserve so that no pod gets an address of the LAN or the MetalLB pool, when the pod network
    contains them (the existing cluster's 192.168.0.0/16 contains the LAN 192.168.86.0/24).
options:
  _input:
    description: The pod network (CIDR).
    type: str
    required: true
  ranges:
    description: CIDRs or C(first-last) address ranges.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Ranges to reserve
  ansible.builtin.debug:
    msg: "{{ '192.168.0.0/16' | dgx_spark.cluster.overlapping_cidrs(['192.168.86.0/24', '192.168.86.200-192.168.86.220']) }}"
  # ['192.168.86.0/24']
"""

RETURN = r"""
_value:
  description: Sorted CIDRs inside the pod network; empty when nothing overlaps.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.addons import overlapping_cidrs


def _overlapping_cidrs(pod_cidr, ranges):
    try:
        return overlapping_cidrs(pod_cidr, ranges)
    except ValueError as exc:
        raise AnsibleFilterError("overlapping_cidrs: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"overlapping_cidrs": _overlapping_cidrs}
