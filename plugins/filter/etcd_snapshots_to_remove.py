# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: etcd_snapshots_to_remove
short_description: The etcd snapshots that rotation by count removes
version_added: 0.3.0
author: dgx_spark.cluster contributors
description:
  - Takes files (paths, or the C(files) of M(ansible.builtin.find)) and returns the paths of the snapshots to remove
    so that the newest O(keep) remain, oldest first.
  - Only files named like M(dgx_spark.cluster.etcd_snapshot) names snapshots
    (C(etcd-snapshot-<node>-<UTC YYYYmmddTHHMMSSZ>[-<label>].db)) count; any other file is never chosen. Newest is
    decided by the UTC time in the name, not by the modification time, which a copy resets.
options:
  _input:
    description: Paths, or dicts with C(path).
    type: list
    elements: raw
    required: true
  keep:
    description: How many snapshots stay (1 or more).
    type: int
    required: true
  protect:
    description: File names that are never chosen (for example the snapshot about to be restored).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Remove all but the newest seven snapshots
  ansible.builtin.file:
    path: "{{ item }}"
    state: absent
  loop: "{{ found.files | dgx_spark.cluster.etcd_snapshots_to_remove(7) }}"
"""

RETURN = r"""
_value:
  description: The paths to remove, oldest first.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.etcd_backup import snapshots_to_remove


def etcd_snapshots_to_remove(files, keep, protect=None):
    try:
        return snapshots_to_remove(files, keep, protect)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("etcd_snapshots_to_remove: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"etcd_snapshots_to_remove": etcd_snapshots_to_remove}
