# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: apps_plan
short_description: The apps catalogue checked, and each app's Kubernetes objects for this run
version_added: 0.3.0
author: dgx_spark.cluster contributors
description:
  - Checks the apps catalogue (C(apps_catalogue) with C(apps_overrides) merged over it) and the run's choices (the
    apps named, the state asked for, the purge and its confirmation); returns every problem in C(problems), one
    message each naming the app and the variable. Only when there is none, C(apps) holds each app this run acts on
    (its state, nodes, address, health URL, the objects to apply, to remove and to keep) and C(namespaces) the
    Namespace objects they need.
  - An app never named, or not enabled, is not in C(apps), so acting on one app never touches another.
  - The companion filter C(apps_summary) turns C(apps) and the health probes into one line per app.
options:
  _input:
    description: C(apps_catalogue), app name to entry.
    type: dict
    required: true
  nodes:
    description: Node name to the GPUs it offers (C(spark_gpu_count)).
    type: dict
    required: true
  pool:
    description: C(metallb_address_pool).
    type: list
    elements: str
  overrides:
    description: C(apps_overrides), merged over the catalogue per app.
    type: dict
  presets:
    description: C(apps_vllm_presets).
    type: dict
  selected:
    description: C(apps_selected), names or a comma-separated string; empty for every enabled app.
    type: raw
  shorthand:
    description: The C(-e apps=) shorthand, used when O(selected) is empty.
    type: raw
  run_state:
    description: C(apps_selected_state) (C(inventory) keeps each app's own state).
    type: str
  shorthand_state:
    description: The C(-e app_state=) shorthand, used when O(run_state) is C(inventory).
    type: str
  purge:
    description: C(apps_purge).
    type: bool
  purge_confirm:
    description: C(apps_purge_confirm), the apps whose claims a purge may delete.
    type: raw
  namespace:
    description: C(apps_namespace).
    type: str
  services:
    description: The cluster's Services (C(resources) of M(kubernetes.core.k8s_info)); an address one of them holds is
      refused for an app other than that Service's own.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Apps | Plan
  ansible.builtin.set_fact:
    _apps: "{{ apps_catalogue | dgx_spark.cluster.apps_plan(nodes={'spark-2959': 1}, pool=metallb_address_pool) }}"
"""

RETURN = r"""
_value:
  description: C(problems), C(apps) (empty when there are problems) and C(namespaces).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.apps import (
    AppsInputError,
    check_catalogue,
    namespaces,
    plan,
    run_choices,
    summary_lines,
)


def _gpus(nodes):
    result = {}
    for name, count in (nodes or {}).items():
        try:
            result[str(name)] = int(count or 0)
        except (TypeError, ValueError):
            raise AnsibleFilterError("apps_plan: spark_gpu_count of %s is %r, not a number" % (name, count))
    return result


def apps_plan(catalogue, nodes, pool=None, overrides=None, presets=None, selected=None, shorthand=None,
              run_state=None, shorthand_state=None, purge=False, purge_confirm=None, namespace="apps", services=None):
    names, state = run_choices(selected, shorthand, run_state, shorthand_state)
    problems = check_catalogue(catalogue, _gpus(nodes), pool, overrides=overrides, presets=presets, selected=names,
                               run_state=state, purge=purge, purge_confirm=purge_confirm, services=services,
                               namespace=namespace)
    if problems:
        return {"problems": problems, "apps": [], "namespaces": []}
    try:
        apps = plan(catalogue, overrides=overrides, presets=presets, selected=names, run_state=state, purge=purge,
                    purge_confirm=purge_confirm, namespace=namespace)
    except AppsInputError as exc:
        raise AnsibleFilterError("apps_plan: %s" % exc)
    return {"problems": [], "apps": apps, "namespaces": namespaces(apps)}


def apps_summary(apps, probes=None):
    """Lines from the plan's apps and ``probes``: the results of ansible.builtin.uri looped over the started apps
    (each with ``item.name``, ``status`` and ``msg``)."""
    found = {}
    for result in probes or []:
        item = result.get("item") or {}
        if result.get("skipped") or not item.get("name"):
            continue
        found[item["name"]] = {"status": result.get("status"), "msg": result.get("msg")}
    return summary_lines(apps, found)


class FilterModule(object):
    def filters(self):
        return {"apps_plan": apps_plan, "apps_summary": apps_summary}
