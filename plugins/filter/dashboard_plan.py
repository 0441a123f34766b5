# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: dashboard_plan
short_description: What a run of the dashboard role does, from the inventory's values
version_added: 0.3.0
author: dgx_spark.cluster contributors
description:
  - Returns the state this run gives the Kubernetes Dashboard (O(run_state) unless it is C(inventory), else
    O(_input)), the chart's values (C(release_values); null when removed), the Deployments waited for (C(ready)), the
    RBAC objects kept (C(objects)), references of those removed (C(remove)), the token files to write (C(tokens),
    each with C(who), C(secret) and C(file)), the token files removed (C(remove_files)) and the address (C(url)).
  - Read-only by default, the ServiceAccount C(dashboard-viewer) bound to the ClusterRole C(view); C(dashboard-admin)
    bound to C(cluster-admin) only while O(admin) is true, removed (binding, token Secret, file) otherwise.
  - Companion filters in this file, C(dashboard_problems) (the variables checked, one message each naming the
    variable), C(dashboard_tokens) (the decoded login tokens from the token Secrets) and C(dashboard_summary) (the
    closing lines; never a token).
options:
  _input:
    description: C(dashboard_state).
    type: str
    required: true
  run_state:
    description: C(dashboard_run_state); C(inventory) keeps O(_input).
    type: str
  admin:
    description: C(dashboard_admin_token).
    type: bool
  namespace:
    description: C(dashboard_namespace).
    type: str
  release:
    description: C(dashboard_release_name).
    type: str
  address:
    description: C(dashboard_address).
    type: str
  extra_values:
    description: C(dashboard_chart_values), merged over the role's values.
    type: dict
  viewer_file:
    description: C(dashboard_viewer_token_file).
    type: str
  admin_file:
    description: C(dashboard_admin_token_file).
    type: str
"""

EXAMPLES = r"""
- name: Dashboard | Plan
  ansible.builtin.set_fact:
    _plan: "{{ 'started' | dgx_spark.cluster.dashboard_plan(address='192.168.86.205', viewer_file='/tmp/v.token') }}"
"""

RETURN = r"""
_value:
  description: C(state), C(admin), C(namespace), C(release), C(url), C(release_values), C(ready), C(objects),
    C(remove), C(tokens), C(remove_files).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import dashboard as core


def dashboard_plan(state, run_state=None, admin=False, namespace=core.CHART, release=core.CHART, address=None,
                   extra_values=None, viewer_file=None, admin_file=None):
    try:
        return core.plan(state, run_state=run_state, admin=admin, namespace=namespace, release=release,
                         address=address, extra_values=extra_values, viewer_file=viewer_file, admin_file=admin_file)
    except ValueError as exc:
        raise AnsibleFilterError("dashboard_plan: %s" % exc)


def dashboard_problems(values):
    """The problems of the role's variables (a mapping of variable name to value)."""
    if not isinstance(values, dict):
        raise AnsibleFilterError("dashboard_problems: expects a mapping of variable names to values")
    return core.check_settings(values)


def dashboard_tokens(secrets, wanted):
    """The plan's ``tokens`` with each decoded ``token`` (None while its Secret holds none) from ``secrets``, the
    ``resources`` of kubernetes.core.k8s_info."""
    return core.tokens(secrets, wanted)


def dashboard_summary(plan, check_mode=False):
    return core.summary(plan, check_mode=check_mode)


def dashboard_token_directories(tokens):
    return core.token_directories(tokens)


class FilterModule(object):
    def filters(self):
        return {"dashboard_plan": dashboard_plan, "dashboard_problems": dashboard_problems,
                "dashboard_tokens": dashboard_tokens, "dashboard_summary": dashboard_summary,
                "dashboard_token_directories": dashboard_token_directories}
