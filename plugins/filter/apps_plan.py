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
    (its state, nodes, address, health URL, the objects to apply, to remove and to keep), C(namespaces) the
    Namespace objects they need, C(apply) each object to apply with what to wait for, C(models) the Ollama models
    to pull, C(image_imports) the local image archives to import where their image is missing, and C(extras) the
    state of the extra apps (managed by their own roles) this run acts on.
  - An app never named, or not enabled, is not in C(apps), so acting on one app never touches another.
  - "The entry fields for those steps: C(model_api) (C(ollama): the app serves Ollama's API) and C(models) (model
    names, a missing tag read as C(:latest); only with C(model_api: ollama), an address and a port);
    C(image_archive) (an absolute path on the controller of a C(docker save)/C(podman save) archive holding the
    app's image; not with C(pull_policy: Always)); C(cache_job) (C({command, args, env, timeout}): a Job
    C(<app>-cache-<8 hex>) run to completion before a started app's Deployment, with the app's image, env, token
    Secret, claim and first node; its name carries a hash of its pod spec, so a completed Job is found again and
    left alone, and a changed one is a new Job)."
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
  extra_apps:
    description:
      - Names the run may name (C(-e apps=)) though they are not in the catalogue, for apps another role manages (the
        playbook passes C([dashboard]) when the dashboard is enabled). A name neither in the catalogue nor here is
        refused, the message listing both.
    type: list
    elements: str
  ready_timeout:
    description: C(apps_ready_timeout), the seconds C(apply) gives a Deployment's rollout, and a cache Job without its
      own C(timeout).
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Apps | Plan
  ansible.builtin.set_fact:
    _apps: "{{ apps_catalogue | dgx_spark.cluster.apps_plan(nodes={'spark-2959': 1}, pool=metallb_address_pool) }}"
"""

RETURN = r"""
_value:
  description: The checks' problems and the plan; every list but C(problems) is empty (C(extras) too) when there are
    problems.
  type: dict
  contains:
    problems:
      description: One message per problem, naming the app and the variable.
      type: list
      elements: str
    apps:
      description:
        - Per app acted on, in catalogue order, C(name), C(state), C(nodes), C(namespace), C(address), C(port), C(url)
          (health), C(gpus), C(image), C(hf_secret), C(model_api), C(models), C(image_archive), C(cache_job)
          (C({name, timeout}) of a started app's Job, or null), C(jobs_selector) (label selector of its cache Jobs),
          C(present) (objects to apply, in this order claim, cache Job, Deployment, Service), C(absent) and C(kept)
          (object references).
      type: list
      elements: dict
    namespaces:
      description: The Namespace objects of the apps not removed.
      type: list
      elements: dict
    apply:
      description:
        - Each object of the apps' C(present) lists, in order, as C({app, state, object, wait, wait_condition,
          wait_timeout}), the arguments of M(kubernetes.core.k8s). A started app's cache Job waits for
          its C(Complete) condition (its C(cache_job.timeout), else O(ready_timeout)), its Deployment for
          its rollout (O(ready_timeout)); nothing else waits.
      type: list
      elements: dict
    models:
      description: C([{app, url, models}]) for each started app with C(model_api=ollama) and models; C(url) is
        C(http://<address>:<port>), its Ollama API through its LoadBalancer address.
      type: list
      elements: dict
    image_imports:
      description: C([{node, app, image, archive}]), one per node an app started or stopped with an C(image_archive)
        may run on, ordered by node and app; one per node and image when apps share an image.
      type: list
      elements: dict
    extras:
      description: Extra app name to the run's state (C(inventory) when the run gives none), for each extra app named,
        or every one when the run names no app.
      type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.apps import (
    AppsInputError,
    apply_steps,
    check_catalogue,
    extras,
    image_imports,
    model_pulls,
    namespaces,
    names_of,
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


def _seconds(value):
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if seconds < 1:
        raise AnsibleFilterError("apps_plan: ready_timeout (apps_ready_timeout) is %r, not a number of seconds" % (value,))
    return seconds


def apps_plan(catalogue, nodes, pool=None, overrides=None, presets=None, selected=None, shorthand=None,
              run_state=None, shorthand_state=None, purge=False, purge_confirm=None, namespace="apps", services=None,
              extra_apps=None, ready_timeout=600):
    names, state = run_choices(selected, shorthand, run_state, shorthand_state)
    extra = names_of(extra_apps)
    problems = check_catalogue(catalogue, _gpus(nodes), pool, overrides=overrides, presets=presets, selected=names,
                               run_state=state, purge=purge, purge_confirm=purge_confirm, services=services,
                               namespace=namespace, extra_apps=extra)
    if problems:
        return {"problems": problems, "apps": [], "namespaces": [], "apply": [], "models": [], "image_imports": [],
                "extras": {}}
    try:
        apps = plan(catalogue, overrides=overrides, presets=presets, selected=names, run_state=state, purge=purge,
                    purge_confirm=purge_confirm, namespace=namespace)
    except AppsInputError as exc:
        raise AnsibleFilterError("apps_plan: %s" % exc)
    return {"problems": [], "apps": apps, "namespaces": namespaces(apps),
            "apply": apply_steps(apps, _seconds(ready_timeout)), "models": model_pulls(apps),
            "image_imports": image_imports(apps), "extras": extras(extra, names, state)}


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
