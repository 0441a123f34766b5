# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: kubernetes_version
short_description: A kubernetes_version in its normal form, with its apt version pattern
version_added: 0.1.0
author: dgx_spark.cluster contributors
description:
  - Accepts a minor series such as V(1.31) (any 1.31.x) or one release such as V(1.31.4); a leading V(v) as in
    Kubernetes tags (V(v1.31.4)) is dropped. Anything else (V(latest), an unquoted YAML number such as 1.30, which
    YAML reads as 1.3) fails with a message that says what to write. Preflight refuses the same values up front.
options:
  _input:
    description: The version as written in the inventory.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Kubernetes packages of the pinned series
  ansible.builtin.apt:
    name: "kubeadm={{ (kubernetes_version | dgx_spark.cluster.kubernetes_version).apt }}"
"""

RETURN = r"""
_value:
  description:
    - C(version) (V(1.31) or V(1.31.4)), C(series) (V(1.31)), C(patch) (V(1.31.4), or None for a series) and
      C(apt), the apt version pattern (V(1.31.*) for a series, V(1.31.4-*) for a release).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.limits import (
    kubernetes_apt_version,
    parse_kubernetes_version,
)


def kubernetes_version(value):
    version, problem = parse_kubernetes_version(value)
    if problem:
        raise AnsibleFilterError(problem)
    parts = version.split(".")
    return {
        "version": version,
        "series": ".".join(parts[:2]),
        "patch": version if len(parts) == 3 else None,
        "apt": kubernetes_apt_version(version),
    }


class FilterModule(object):
    def filters(self):
        return {"kubernetes_version": kubernetes_version}
