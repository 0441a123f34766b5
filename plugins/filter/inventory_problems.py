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
  - Checks the inventory as a whole and every node's values, before anything changes, and returns one plain message
    per problem in C(problems) (empty when it is sound), and risks an existing cluster may live with in C(warnings)
    (also shown as Ansible warnings).
  - Exactly one control-plane node, at least one worker, valid Kubernetes node names, valid networks that do not
    overlap (LAN, each fabric half, pod and service CIDRs), every node address inside its subnet, no address used
    twice, the API address on the control plane's first fabric half, a MetalLB pool inside the LAN that holds no
    node address, valid Wake-on-LAN MACs, shell-safe Linux interface names, a fabric MTU in range, a
    C(kubernetes_version) of an accepted form, and the settings that must agree across nodes.
  - For the preflight role itself and every role in O(roles), that role's C(meta/argument_specs.yml) is checked on
    every node against the node's variables merged over the role's C(defaults/main.yml) (numeric strings such as
    extra vars are accepted where a number is declared), then every number against its bounds (timeouts at least 1,
    ports 1..65535, MTU 1280..9216, ...) and the NCCL sizes against the memory-safe cap.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  groups:
    description: C(groups), used for C(spark_cluster), C(control_plane) and C(workers).
    type: dict
    required: true
  roles:
    description: Roles of this collection (short or fully qualified names) whose argument specs are checked too.
    type: list
    elements: str
    default: []
  cluster:
    description:
      - Whether the control plane already has a cluster. It decides how a pod network that overlaps the LAN is
        judged; V(exists) warns, V(new) and V(unknown) refuse unless C(kubernetes_pod_cidr_overlap_accepted),
        V(defer) leaves it for a later call that knows.
    type: str
    choices: [defer, exists, new, unknown]
    default: defer
"""

EXAMPLES = r"""
- name: Fail with every inventory problem at once
  ansible.builtin.assert:
    that: _check.problems | length == 0
    fail_msg: "{{ _check.problems }}"
  vars:
    _check: "{{ hostvars | dgx_spark.cluster.inventory_problems(groups, roles=['node_prep', 'fabric']) }}"
"""

RETURN = r"""
_value:
  description: C(problems) (one message each; empty when the inventory is sound) and C(warnings).
  type: dict
"""

import os

import yaml

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.utils.display import Display
from ansible_collections.dgx_spark.cluster.plugins.module_utils.inventory_checks import (
    HOST_KEYS,
    check_cluster,
    role_params,
)

COLLECTION = "dgx_spark.cluster."
ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")
_ROLE_CACHE = {}

display = Display()


# libyaml when PyYAML has it: the pure-Python loader takes some 30 ms per spec file, and each task is a new process.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_LOADER) or {}


def load_role(name, roles_dir=ROLES_DIR):
    """``(options, defaults)`` of one role of this collection: its argument spec's options (of every entry point) and
    its defaults."""
    short = name[len(COLLECTION):] if name.startswith(COLLECTION) else name
    key = (roles_dir, short)
    if key not in _ROLE_CACHE:
        spec_path = os.path.join(roles_dir, short, "meta", "argument_specs.yml")
        if "." in short or "/" in short or not os.path.isfile(spec_path):
            raise AnsibleFilterError("preflight_roles: %r is not a role of dgx_spark.cluster with meta/argument_specs.yml"
                                     % (name,))
        # The options of every entry point (main first): a role such as power has no main, only sleep, suspend, wake.
        entry_points = _read_yaml(spec_path).get("argument_specs") or {}
        options = {}
        for entry in ["main"] + sorted(set(entry_points) - {"main"}):
            for option, spec in ((entry_points.get(entry) or {}).get("options") or {}).items():
                options.setdefault(option, spec)
        defaults_path = os.path.join(roles_dir, short, "defaults", "main.yml")
        defaults = _read_yaml(defaults_path) if os.path.isfile(defaults_path) else {}
        _ROLE_CACHE[key] = (options, defaults)
    return _ROLE_CACHE[key]


def _host_values(hostvars, name, keys):
    """The host's variables among ``keys`` as written (inventory, extra vars), not templated.

    A value that is a template is not checked, like a role default that is one: it is derived from other variables
    (kubernetes_api_lan_url, ansible_port), templating it here, outside a task's context, could fail, and the
    variables it is derived from are checked themselves. It still counts as given (role_params leaves it out)."""
    raw_get = getattr(hostvars, "raw_get", None)
    host = raw_get(name) if raw_get is not None else hostvars[name]
    return dict((key, host[key]) for key in sorted(keys) if key in host)


def _is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _validate(options, defaults, values):
    spec, params = role_params(options, defaults, values)
    result = ArgumentSpecValidator(spec).validate(params)
    converted = dict((key, value) for key, value in result.validated_parameters.items() if key in params)
    return converted, list(result.error_messages), list(params)


def inventory_problems(hostvars, groups, roles=None, cluster="defer"):
    members = list(groups.get("spark_cluster") or [])
    specs = [load_role(name) for name in ["preflight"] + list(roles or [])]
    keys = set(HOST_KEYS)
    for options, _defaults in specs:
        keys.update(options)
    hosts = {}
    validated = {}
    for name in members:
        values = _host_values(hostvars, name, keys)
        hosts[name] = dict((key, value) for key, value in values.items() if not _is_template(value))
        outcome = {"values": {}, "errors": [], "checked": []}
        for options, defaults in specs:
            converted, messages, checked = _validate(options, defaults, values)
            outcome["values"].update(converted)
            outcome["errors"].extend(messages)
            outcome["checked"].extend(checked)
        validated[name] = outcome
    try:
        problems, warnings = check_cluster(hosts, groups, validated, cluster)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))
    for warning in warnings:
        display.warning(warning)
    return {"problems": problems, "warnings": warnings}


class FilterModule(object):
    def filters(self):
        return {"inventory_problems": inventory_problems}
