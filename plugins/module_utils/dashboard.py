# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the Kubernetes Dashboard role: its inputs checked, and what a run does, from the inventory's values.
No Ansible imports, no I/O.

* ``check_settings(values)``: every problem of the role's variables (a pinned chart version, an address inside the
  MetalLB pool and no app's, absolute token files, the state), one message each naming the variable. The role's
  first task asserts it; preflight can call it with the same host values (its variables present means the role is
  part of the run).
* ``plan(...)``: the state this run gives the Dashboard, the chart's values, the Deployments waited for, the RBAC
  objects to apply and to remove, the token files to write and to remove.
* ``tokens(secrets, wanted)``: the login tokens, decoded, from the token Secrets the API returned.
* ``summary(plan)``: the closing lines (address and token files; never a token).

Read-only by default: the ServiceAccount ``dashboard-viewer`` bound to the built-in ClusterRole ``view`` (which does
not grant Secrets), with a long-lived token Secret. ``dashboard-admin`` (cluster-admin) exists only while the
inventory opts in; turning the opt-in off removes its binding, its token Secret (which revokes the token) and its file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
import posixpath
import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils.addons import version_problem
from ansible_collections.dgx_spark.cluster.plugins.module_utils.apps import (
    LB_ANNOTATION, entries, in_pool, merge, pool_ranges, truthy)

STATES = ("started", "stopped", "absent")
# dashboard_run_state: "inventory" keeps dashboard_state.
RUN_STATES = ("inventory",) + STATES
CHART = "kubernetes-dashboard"
KONG = "kong"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_ANNOTATION = "kubernetes.io/service-account.name"
MANAGED_BY = "dgx_spark.cluster"
# Who logs in with which ClusterRole: the built-in "view" cannot read Secrets (nor escalate); cluster-admin can do
# everything and exists only on explicit opt-in.
ACCOUNTS = (
    {"who": "viewer", "name": "dashboard-viewer", "cluster_role": "view"},
    {"who": "admin", "name": "dashboard-admin", "cluster_role": "cluster-admin"},
)
# The chart's Deployments, by values key: the Deployment's suffix (after the chart's full name). Kong's is the
# subchart's own (<release>-kong), scaled by kong.replicaCount.
COMPONENTS = (("api", "api"), ("auth", "auth"), ("web", "web"), ("metricsScraper", "metrics-scraper"))
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def effective_state(state, run_state=None):
    """The state this run gives the Dashboard: ``run_state`` (the playbook's choice) unless it is empty or
    "inventory", else ``state`` (dashboard_state)."""
    run = "" if run_state is None else str(run_state).strip()
    if run and run != "inventory":
        return run
    return "" if state is None else str(state).strip()


def _app_addresses(catalogue, overrides):
    """Address -> app name of every enabled app of the apps catalogue (overrides merged)."""
    owners = {}
    for name, entry in entries(catalogue or {}, overrides or {}).items():
        if not isinstance(entry, dict) or entry.get("_override_only") or not truthy(entry.get("enabled"), True):
            continue
        if entry.get("address") not in (None, ""):
            owners.setdefault(str(entry["address"]).strip(), name)
    return owners


def _file_problem(name, value):
    if value is None or _is_template(value):
        return None
    text = str(value)
    if not text.strip():
        return "%s is empty: give an absolute path on the controller for the token file" % name
    if not posixpath.isabs(text):
        return "%s: %r is not an absolute path (the token file is written on the controller)" % (name, text)
    if text.endswith("/"):
        return "%s: %r names a directory; give the token file's path" % (name, text)
    return None


def check_settings(values):
    """Every problem of the role's variables in ``values`` (variable name -> value, as a host holds them), one
    message each naming the variable; [] when there is none.

    A variable absent from ``values``, or still a template, is not checked (preflight sees derived defaults such as
    the token files' paths only when the role runs). Reads ``dashboard_*``, ``metallb_address_pool``, and
    ``apps_catalogue`` / ``apps_overrides`` (an app's address is not the Dashboard's)."""
    problems = []
    state = values.get("dashboard_state")
    if state is not None and str(state) not in STATES:
        problems.append("dashboard_state: %r is not one of %s" % (state, ", ".join(STATES)))
    run_state = values.get("dashboard_run_state")
    if run_state not in (None, "") and str(run_state) not in RUN_STATES:
        problems.append("dashboard_run_state: %r is not one of %s" % (run_state, ", ".join(RUN_STATES)))
    effective = effective_state(state if state is not None else "started", run_state)

    if "dashboard_chart_version" in values and not _is_template(values["dashboard_chart_version"]):
        problem = version_problem("dashboard_chart_version", values["dashboard_chart_version"])
        if problem:
            problems.append(problem)
    if "dashboard_chart_ref" in values and not str(values.get("dashboard_chart_ref") or "").strip():
        problems.append("dashboard_chart_ref is empty: give the chart's name in dashboard_chart_repo_url, or a path "
                        "on the controller to the chart")
    for name in ("dashboard_namespace", "dashboard_release_name"):
        value = values.get(name)
        if value is not None and not _is_template(value) and not NAME_RE.match(str(value)):
            problems.append("%s: %r is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)"
                            % (name, value))
    timeout = values.get("dashboard_ready_timeout")
    if timeout is not None and not _is_template(timeout):
        try:
            if isinstance(timeout, bool) or int(timeout) < 1:
                raise ValueError(timeout)
        except (TypeError, ValueError):
            problems.append("dashboard_ready_timeout: %r is not a number of seconds of at least 1" % (timeout,))
    if "dashboard_chart_values" in values and not isinstance(values["dashboard_chart_values"], dict):
        problems.append("dashboard_chart_values must be a mapping of chart values, got %r"
                        % (values["dashboard_chart_values"],))

    files = {}
    for name in ("dashboard_viewer_token_file", "dashboard_admin_token_file"):
        problem = _file_problem(name, values.get(name))
        if problem:
            problems.append(problem)
        elif values.get(name) is not None and not _is_template(values[name]):
            files[name] = posixpath.normpath(str(values[name]))
    if len(files) == 2 and files["dashboard_viewer_token_file"] == files["dashboard_admin_token_file"]:
        problems.append("dashboard_viewer_token_file and dashboard_admin_token_file are the same file (%s): the admin "
                        "token would overwrite the read-only one" % files["dashboard_viewer_token_file"])

    # A Dashboard being removed needs no address.
    address = values.get("dashboard_address")
    if effective != "absent" and address is not None and not _is_template(address):
        problems.extend(_address_problems(str(address).strip(), values))
    return problems


def _address_problems(address, values):
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return ["dashboard_address: %r is not an IP address" % address]
    if "metallb_address_pool" in values:
        pool = values.get("metallb_address_pool") or []
        if not pool:
            return ["dashboard_address %s needs a MetalLB pool to come from, but metallb_address_pool is empty"
                    % address]
        if not in_pool(parsed, pool_ranges(pool)):
            return ["dashboard_address: %s is outside the MetalLB pool (metallb_address_pool: %s); MetalLB would never "
                    "assign it" % (address, ", ".join(str(entry) for entry in pool))]
    owners = _app_addresses(values.get("apps_catalogue"), values.get("apps_overrides"))
    for other, name in sorted(owners.items()):
        try:
            if ipaddress.ip_address(other) == parsed:
                return ["dashboard_address: %s is already the address of the app %s (apps_catalogue.%s.address); "
                        "choose another address of the pool" % (address, name, name)]
        except ValueError:
            continue  # the apps' checks report it
    return []


# --- what a run does ------------------------------------------------------------------------------------------------

def labels(who):
    return {"app.kubernetes.io/name": CHART, "app.kubernetes.io/component": who,
            "app.kubernetes.io/managed-by": MANAGED_BY}


def token_secret_name(account):
    return "%s-token" % account["name"]


def account_objects(account, namespace):
    """ServiceAccount, its long-lived token Secret and its ClusterRoleBinding, in the order they are applied (the
    token controller deletes a token Secret whose ServiceAccount does not exist)."""
    meta = labels(account["who"])
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account["name"], "namespace": namespace, "labels": meta}},
        {"apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
         "metadata": {"name": token_secret_name(account), "namespace": namespace, "labels": meta,
                      "annotations": {SA_ANNOTATION: account["name"]}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": account["name"], "labels": meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account["cluster_role"]},
         "subjects": [{"kind": "ServiceAccount", "name": account["name"], "namespace": namespace}]},
    ]


def reference(obj):
    """What kubernetes.core.k8s needs to remove ``obj``."""
    ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        ref["namespace"] = obj["metadata"]["namespace"]
    return ref


def chart_values(address, state, extra=None):
    """The release's values: the Kong proxy Service as a LoadBalancer on ``address`` (MetalLB's annotation), the
    inventory's ``extra`` (dashboard_chart_values) merged over them, and for ``stopped`` every Deployment at 0
    replicas (whatever ``extra`` says)."""
    values = {KONG: {"proxy": {"type": "LoadBalancer", "annotations": {LB_ANNOTATION: str(address)}}}}
    values = merge(values, extra or {})
    if state == "stopped":
        zero = dict((key, {"scaling": {"replicas": 0}}) for key, _suffix in COMPONENTS)
        zero[KONG] = {"replicaCount": 0}
        values = merge(values, zero)
    return values


def _fullname(release, override, chart):
    if override:
        return str(override)[:63].rstrip("-")
    name = release if chart in release else "%s-%s" % (release, chart)
    return name[:63].rstrip("-")


def deployments(release, namespace, values):
    """The chart's Deployments (kind, name, namespace) as its templates name them: ``<fullname>-api``, ``-auth``,
    ``-web``, ``-metrics-scraper`` (when enabled) and Kong's ``<release>-kong`` (when enabled)."""
    fullname = _fullname(release, values.get("fullnameOverride"), CHART)
    found = []
    for key, suffix in COMPONENTS:
        if key == "metricsScraper" and not truthy((values.get(key) or {}).get("enabled"), True):
            continue
        found.append({"kind": "Deployment", "name": "%s-%s" % (fullname, suffix), "namespace": namespace})
    kong = values.get(KONG) or {}
    if truthy(kong.get("enabled"), True):
        found.append({"kind": "Deployment", "name": _fullname(release, kong.get("fullnameOverride"), KONG),
                      "namespace": namespace})
    return found


def plan(state, run_state=None, admin=False, namespace=CHART, release=CHART, address=None, extra_values=None,
         viewer_file=None, admin_file=None):
    """What this run does (see the role's tasks):

    ``state`` the effective state; ``release_values`` the chart's values (None when the release is removed);
    ``ready`` the Deployments waited for (none when stopped or absent); ``objects`` the RBAC objects kept (applied
    when missing or different); ``remove`` references of the objects removed (the admin's unless opted in;
    everything when absent); ``tokens`` the token files to write (``who``, ``secret``, ``file``); ``remove_files``
    the token files removed; ``url`` the Dashboard's address."""
    effective = effective_state(state, run_state)
    if effective not in STATES:
        raise ValueError("dashboard state %r is not one of %s" % (effective, ", ".join(STATES)))
    admin = truthy(admin)
    files = {"viewer": viewer_file, "admin": admin_file}
    result = {"state": effective, "admin": admin, "namespace": namespace, "release": release,
              "url": "https://%s/" % address if address else None, "release_values": None, "ready": [],
              "objects": [], "remove": [], "tokens": [], "remove_files": []}
    for account in ACCOUNTS:
        objects = account_objects(account, namespace)
        keep = effective != "absent" and (account["who"] == "viewer" or admin)
        if keep:
            result["objects"].extend(objects)
            result["tokens"].append({"who": account["who"], "secret": token_secret_name(account),
                                     "file": files[account["who"]]})
        else:
            # Removed in reverse: the binding first, so the account's rights go before anything else.
            result["remove"].extend(reference(obj) for obj in reversed(objects))
            if files[account["who"]]:
                result["remove_files"].append(files[account["who"]])
    if effective != "absent":
        result["release_values"] = chart_values(address, effective, extra_values)
        if effective == "started":
            result["ready"] = deployments(release, namespace, result["release_values"])
    return result


def token_directories(tokens):
    """The directories the token files go in, each once, in order."""
    seen = []
    for token in tokens or []:
        directory = posixpath.dirname(str(token.get("file") or ""))
        if directory and directory not in seen:
            seen.append(directory)
    return seen


def tokens(secrets, wanted):
    """``[{"who", "secret", "file", "token"}]`` for each wanted token whose Secret holds one (decoded); the token is
    None while the API has not filled the Secret yet (or it does not exist: check mode before the first run).

    ``secrets``: the ``resources`` of kubernetes.core.k8s_info for the namespace's Secrets."""
    found = {}
    for secret in secrets or []:
        name = (secret.get("metadata") or {}).get("name")
        data = secret.get("data") or {}
        if secret.get("type") == TOKEN_TYPE and name and data.get("token"):
            try:
                found[name] = base64.b64decode(data["token"]).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                continue
    return [dict(entry, token=found.get(entry["secret"])) for entry in wanted or []]


def summary(result, check_mode=False):
    """The closing lines: the state, the address and where each token file is, or that it is gone. Never a token."""
    lines = []
    if result["state"] == "absent":
        lines.append("Kubernetes Dashboard absent: release %s/%s uninstalled; its login accounts, their bindings and "
                     "token Secrets removed" % (result["namespace"], result["release"]))
    elif result["state"] == "stopped":
        lines.append("Kubernetes Dashboard stopped: release %s/%s kept, its Deployments at 0 replicas (%s when "
                     "started)" % (result["namespace"], result["release"], result["url"]))
    else:
        lines.append("Kubernetes Dashboard started: %s" % result["url"])
    for token in result["tokens"]:
        lines.append("%s login token (Secret %s): %s (mode 0600)" % (
            "read-only" if token["who"] == "viewer" else "cluster-admin", token["secret"], token["file"]))
    if result["state"] != "absent" and not result["admin"]:
        lines.append("no cluster-admin token (dashboard_admin_token is false; an earlier one is revoked)")
    for path in result["remove_files"]:
        lines.append("no token file at %s" % path)
    if check_mode:
        lines = ["check mode, nothing changed; the plan: " + lines[0]] + lines[1:]
    return lines
