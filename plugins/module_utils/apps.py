# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the apps (Ollama, Open WebUI, ComfyUI and its model manager, vLLM, image generation): the
inventory's catalogue checked, and each app's Kubernetes objects rendered from it. No Ansible imports, no I/O.

* ``check_catalogue(...)``: every problem of the catalogue and of the run's choices (``-e apps=``, ``-e app_state=``,
  the purge confirmation), one message each, naming the app and the variable. Preflight calls it (through
  inventory_checks) before anything changes; the ``apps_plan`` filter calls it again with the Services the
  cluster holds, so an address another Service already uses is refused too.
* ``plan(...)``: per app acted on, its state and the objects to apply, to remove and to keep.
* ``apply_steps(...)``, ``model_pulls(...)``, ``image_imports(...)``, ``extras(...)``: what the role reads from the
  plan: each object to apply with what to wait for, the Ollama models to pull, the local image archives to import
  where an image is missing, and the state of the extra apps (managed by their own roles) this run names.
* ``summary_lines(...)``: the closing summary, from the plan and the health probes.

The catalogue (``apps_catalogue``, group_vars/all/apps.yml) maps an app's name to its entry; ``apps_overrides``
(same shape, any subset of fields) is merged over it per app, key by key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import ipaddress
import json
import re

STATES = ("started", "stopped", "absent")
# apps_selected_state: "inventory" keeps each app's own state.
RUN_STATES = ("inventory",) + STATES
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
GPU_RESOURCE = "nvidia.com/gpu"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
GPU_RUNTIME_CLASS = "nvidia"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# MetalLB's annotation for a fixed address (the metallb.io prefix since MetalLB 0.14.9; the older
# metallb.universe.tf prefix and spec.loadBalancerIP are still honoured, and still read by address_owners).
LB_ANNOTATION = "metallb.io/loadBalancerIPs"
LB_ANNOTATIONS_READ = (LB_ANNOTATION, "metallb.universe.tf/loadBalancerIPs")
MANAGED_BY = "dgx_spark.cluster"
PART_OF = "dgx-spark-apps"
# An app's name becomes its Deployment's, Service's and labels' name: an RFC 1035 label (Services need one).
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Fields an entry may hold (a typo such as "gpu" or "adress" is refused, not silently ignored).
FIELDS = frozenset(["enabled", "state", "node", "image", "pull_policy", "gpus", "resources", "storage", "address",
                    "ports", "health_path", "startup_timeout", "env", "command", "args", "namespace", "shm_size",
                    "preset", "hf_token", "description", "model_api", "models", "image_archive", "cache_job"])
STORAGE_FIELDS = frozenset(["claim", "size", "class", "access_mode", "mounts", "shared_with"])
CACHE_JOB_FIELDS = frozenset(["command", "args", "env", "timeout"])
# The model-serving APIs the role can pull models through (models.yml).
MODEL_APIS = ("ollama",)
# An Ollama model name: [host/][namespace/]model[:tag] (llama3.1:8b, qwen2.5-coder:7b, hf.co/org/repo:Q4_K_M).
MODEL_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,349}/){0,2}[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,79})?$")
# The label every cache Job carries (with the app's own): the role deletes an absent app's Jobs by it.
CACHE_JOB_LABEL = "dgx-spark.cluster/cache-job"
APP_LABEL = "dgx-spark.cluster/app"
# A Job's name becomes its pods' job-name label value: 63 characters at most.
JOB_NAME_MAX = 63
PRESET_FIELDS = frozenset(["model", "dtype", "max_model_len", "gpu_memory_utilization", "extra_args", "env", "nodes"])
HF_SECRET_KEY = "token"


class AppsInputError(ValueError):
    """A catalogue the renderer cannot use (check_catalogue reports these as problems first)."""


# --- helpers -------------------------------------------------------------------------------------------------------

_TRUE = frozenset(["true", "yes", "on", "1", "y", "t"])


def truthy(value, default=False):
    """A boolean from a YAML or extra-vars value (``"yes"``, ``"1"``, ``True``, ...); ``default`` for None."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^\s*\d+\s*$", value):
        return int(value)
    return None


def names_of(value):
    """A list of names from a list or a comma-separated string (``-e apps=ollama,openwebui``); [] for none."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def merge(base, over):
    """``over`` merged over ``base``, mappings key by key (lists and other values replaced)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    result = copy.deepcopy(base)
    for key, value in over.items():
        result[key] = merge(result[key], value) if key in result and isinstance(value, dict) else copy.deepcopy(value)
    return result


def entries(catalogue, overrides=None):
    """The catalogue with ``overrides`` merged over it, app by app (an override for an unknown app is kept, so the
    check names it)."""
    result = {}
    for name, entry in (catalogue or {}).items():
        result[str(name)] = copy.deepcopy(entry)
    for name, entry in (overrides or {}).items():
        name = str(name)
        if name in result and isinstance(result[name], dict) and isinstance(entry, dict):
            result[name] = merge(result[name], entry)
        elif name not in result:
            result[name] = {"_override_only": True}
    return result


def pool_ranges(pool):
    """``[(first, last), ...]`` as ip_address pairs from metallb_address_pool (``first-last`` or CIDR); entries that do
    not parse are left out (preflight reports them)."""
    ranges = []
    for entry in pool or []:
        text = str(entry)
        try:
            if "-" in text:
                first, last = text.split("-", 1)
                ranges.append((ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())))
            else:
                net = ipaddress.ip_network(text, strict=False)
                ranges.append((net.network_address, net.broadcast_address))
        except ValueError:
            continue
    return ranges


def in_pool(address, ranges):
    return any(first.version == address.version and int(first) <= int(address) <= int(last) for first, last in ranges)


def run_choices(selected=None, shorthand=None, run_state=None, shorthand_state=None):
    """``(names, state)`` this run acts on: ``apps_selected`` or else the ``-e apps=`` shorthand; ``apps_selected_state``
    unless it is "inventory" (or unset), else the ``-e app_state=`` shorthand, else "inventory"."""
    names = names_of(selected) or names_of(shorthand)
    state = str(run_state).strip() if run_state not in (None, "") else "inventory"
    if state == "inventory" and shorthand_state not in (None, ""):
        state = str(shorthand_state).strip()
    return names, state


def image_problem(image):
    """Why ``image`` is not pinned to one tag or digest (``latest``, no tag, an empty tag), or None when it is."""
    text = "" if image is None else str(image).strip()
    if not text:
        return "is empty: give an image pinned by tag or digest (for example ollama/ollama:0.12.6)"
    if any(char.isspace() for char in text):
        return "'%s' contains whitespace" % text
    if "@" in text:
        digest = text.split("@", 1)[1]
        return None if DIGEST_RE.match(digest) else "'%s' has a digest that is not sha256:<64 hex digits>" % text
    last = text.rsplit("/", 1)[-1]
    if ":" not in last:
        return "'%s' has no tag, which means latest: pin a tag or a digest" % text
    tag = last.rsplit(":", 1)[1]
    if not tag:
        return "'%s' has an empty tag: pin a tag or a digest" % text
    if tag.lower() == "latest":
        return "'%s' is tagged latest, which moves under the cluster: pin a release tag or a digest" % text
    if not TAG_RE.match(tag):
        return "'%s' has a tag that is not a valid image tag" % text
    return None


def model_name(model):
    """An Ollama model name with a missing tag made ``:latest`` (as Ollama names it in /api/tags)."""
    text = str(model).strip()
    return text if ":" in text.rsplit("/", 1)[-1] else text + ":latest"


def job_name(app, digest):
    return "%s-cache-%s" % (app, digest)


def _nodes_of(entry):
    node = entry.get("node")
    return [str(item) for item in node] if isinstance(node, list) else ([str(node)] if node not in (None, "") else [])


def _state(entry, name, selected, run_state):
    if run_state != "inventory" and name in selected:
        return run_state
    return str(entry.get("state", "stopped"))


def _storage(name, entry, all_entries):
    """The claim an app mounts: ``(claim name, access mode, owner app)``; None when it has no storage."""
    storage = entry.get("storage")
    if not isinstance(storage, dict) or not storage:
        return None
    owner = storage.get("shared_with")
    if owner:
        other = all_entries.get(str(owner))
        other_storage = (other or {}).get("storage") if isinstance(other, dict) else None
        if not isinstance(other_storage, dict):
            return None
        return (other_storage.get("claim") or "%s-data" % owner, other_storage.get("access_mode") or "ReadWriteOnce",
                str(owner))
    return storage.get("claim") or "%s-data" % name, storage.get("access_mode") or "ReadWriteOnce", name


# --- checks --------------------------------------------------------------------------------------------------------

def _check_resources(label, resources, problems):
    if resources in (None, {}):
        return
    if not isinstance(resources, dict) or set(resources) - {"requests", "limits"}:
        problems.append("%s.resources: must be a mapping with requests and/or limits, got %r" % (label, resources))
        return
    for part in ("requests", "limits"):
        values = resources.get(part) or {}
        if not isinstance(values, dict):
            problems.append("%s.resources.%s: must be a mapping such as {cpu: '1', memory: 4Gi}" % (label, part))
            continue
        for key, value in values.items():
            if key == GPU_RESOURCE:
                problems.append("%s.resources.%s: set GPUs with %s.gpus, not %s" % (label, part, label, GPU_RESOURCE))
            elif not QUANTITY_RE.match(str(value)):
                problems.append("%s.resources.%s.%s: %r is not a Kubernetes quantity (such as 500m, 2, 4Gi)"
                                % (label, part, key, value))


def _check_fields(where, mapping, known, problems):
    """A field ``mapping`` may not hold (a typo such as "gpu" or "adress") is refused, not silently ignored."""
    unknown = sorted(set(mapping) - known)
    if unknown:
        problems.append("%s: unknown field(s) %s (known: %s)" % (where, ", ".join(unknown), ", ".join(sorted(known))))


def _check_storage(label, name, entry, all_entries, problems):
    storage = entry.get("storage")
    if storage in (None, {}):
        return
    if not isinstance(storage, dict):
        problems.append("%s.storage: must be a mapping (size, class, mounts), got %r" % (label, storage))
        return
    _check_fields("%s.storage" % label, storage, STORAGE_FIELDS, problems)
    mounts = storage.get("mounts")
    if not isinstance(mounts, list) or not mounts:
        problems.append("%s.storage.mounts: list where the claim is mounted, each {path, sub_path}" % label)
        mounts = []
    paths = []
    for index, mount in enumerate(mounts):
        path = mount.get("path") if isinstance(mount, dict) else None
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append("%s.storage.mounts[%d].path: %r is not an absolute path" % (label, index, path))
        elif path in paths:
            problems.append("%s.storage.mounts[%d].path: %s is mounted twice" % (label, index, path))
        paths.append(path)
        sub_path = mount.get("sub_path") if isinstance(mount, dict) else None
        if sub_path and (str(sub_path).startswith("/") or ".." in str(sub_path).split("/")):
            problems.append("%s.storage.mounts[%d].sub_path: %r must be relative, inside the volume" % (label, index, sub_path))
    owner = storage.get("shared_with")
    if owner:
        other = all_entries.get(str(owner))
        if not isinstance(other, dict) or other.get("_override_only"):
            problems.append("%s.storage.shared_with: %r is not an app of apps_catalogue" % (label, owner))
            return
        if str(owner) == name:
            problems.append("%s.storage.shared_with: an app cannot share its own claim" % label)
            return
        if not isinstance(other.get("storage"), dict) or other["storage"].get("shared_with"):
            problems.append("%s.storage.shared_with: %s has no claim of its own to share" % (label, owner))
            return
        for field in ("size", "class", "access_mode", "claim"):
            if field in storage:
                problems.append("%s.storage.%s: the claim is %s's (shared_with); set it there" % (label, field, owner))
        if not truthy(other.get("enabled"), True):
            problems.append("%s.storage.shared_with: %s is not enabled (apps_catalogue.%s.enabled), so its claim is "
                            "not managed" % (label, owner, owner))
        mode = other["storage"].get("access_mode") or "ReadWriteOnce"
        if mode in ("ReadWriteOnce", "ReadWriteOncePod") and sorted(_nodes_of(entry)) != sorted(_nodes_of(other)):
            where = ", ".join(_nodes_of(other)) or "none"
            problems.append("%s.node: %s shares %s's %s claim, which only one node can mount: schedule it on %s's node "
                            "(%s), or make the claim ReadWriteMany" % (label, name, owner, mode, owner, where))
        return
    if not QUANTITY_RE.match(str(storage.get("size", ""))):
        problems.append("%s.storage.size: %r is not a size such as 50Gi" % (label, storage.get("size")))
    if storage.get("access_mode", "ReadWriteOnce") not in ACCESS_MODES:
        modes = ", ".join(ACCESS_MODES)
        problems.append("%s.storage.access_mode: %r is not one of %s" % (label, storage.get("access_mode"), modes))
    if storage.get("claim") is not None and not NAME_RE.match(str(storage.get("claim"))):
        problems.append("%s.storage.claim: %r is not a valid claim name" % (label, storage.get("claim")))
    mode = storage.get("access_mode") or "ReadWriteOnce"
    if mode in ("ReadWriteOnce", "ReadWriteOncePod") and len(_nodes_of(entry)) > 1:
        problems.append("%s.storage.access_mode: %s on %d nodes: a %s claim mounts on one node only; use ReadWriteMany "
                        "(the NFS class) for an app spread across nodes" % (label, name, len(_nodes_of(entry)), mode))


def _check_preset(label, entry, presets, problems):
    preset = entry.get("preset")
    if preset in (None, ""):
        return
    if not isinstance(presets, dict) or str(preset) not in presets:
        problems.append("%s.preset: unknown preset %r (apps_vllm_presets has %s)"
                        % (label, preset, ", ".join(sorted(presets or {})) or "none"))
        return
    body = presets[str(preset)]
    where = "apps_vllm_presets.%s" % preset
    if not isinstance(body, dict):
        problems.append("%s: must be a mapping (model, dtype, max_model_len, ...), got %r" % (where, body))
        return
    _check_fields(where, body, PRESET_FIELDS, problems)
    if not body.get("model"):
        problems.append("%s.model: the model to serve is missing" % where)
    if body.get("max_model_len") is not None and (_int(body.get("max_model_len")) or 0) < 1:
        problems.append("%s.max_model_len: %r is not a positive number of tokens" % (where, body.get("max_model_len")))
    share = body.get("gpu_memory_utilization")
    if share is not None:
        try:
            ok = 0 < float(share) <= 1 and not isinstance(share, bool)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append("%s.gpu_memory_utilization: %r is not a share of GPU memory in (0, 1]" % (where, share))
    if not isinstance(body.get("extra_args", []), list):
        problems.append("%s.extra_args: must be a list of arguments" % where)
    nodes = _int(body.get("nodes", 1))
    if nodes is None or nodes < 1:
        problems.append("%s.nodes: %r is not a number of nodes" % (where, body.get("nodes")))
    elif nodes > 1:
        problems.append("%s.nodes: %d: serving one model across nodes is not built yet; use a single-node preset (%s "
                        "picks %s)" % (where, nodes, label, preset))


def _check_models(label, entry, problems):
    api = entry.get("model_api")
    if api not in (None, "") and api not in MODEL_APIS:
        problems.append("%s.model_api: %r is not one of %s" % (label, api, ", ".join(MODEL_APIS)))
    models = entry.get("models")
    if models is None or models == []:
        return
    if not isinstance(models, list):
        problems.append("%s.models: must be a list of model names (such as llama3.2:3b), got %r" % (label, models))
        return
    if api != "ollama":
        problems.append("%s.models: only an app that serves Ollama's API pulls models; set %s.model_api: ollama, or "
                        "remove the list" % (label, label))
    if entry.get("address") in (None, ""):
        problems.append("%s.models: the models are pulled from the controller through the app's LoadBalancer address "
                        "and first port (every app lists its ports); give it an address (%s.address)" % (label, label))
    seen = {}
    for index, model in enumerate(models):
        if not isinstance(model, str) or not model.strip():
            problems.append("%s.models[%d]: %r is not a model name (such as llama3.2:3b)" % (label, index, model))
            continue
        if not MODEL_RE.match(model):
            problems.append("%s.models[%d]: %r is not an Ollama model name ([host/][namespace/]model[:tag], such as "
                            "llama3.1:8b or hf.co/org/repo:Q4_K_M)" % (label, index, model))
            continue
        key = model_name(model).lower()
        if key in seen:
            problems.append("%s.models[%d]: %s is listed twice (models[%d] is %s)"
                            % (label, index, model, seen[key], models[seen[key]]))
        else:
            seen[key] = index


def _check_image_archive(label, entry, problems):
    archive = entry.get("image_archive")
    if archive in (None, ""):
        return
    if isinstance(archive, str) and "{{" in archive:
        # Preflight sees the inventory's values unrendered (a path built from inventory_dir); the role checks the
        # rendered path again before anything changes.
        pass
    elif not isinstance(archive, str) or not archive.startswith("/") or any(char.isspace() for char in archive):
        problems.append("%s.image_archive: %r is not an absolute path on the controller (such as "
                        "/var/lib/dgx-spark/images/app-1.0.0.tar)" % (label, archive))
    elif archive.endswith("/"):
        problems.append("%s.image_archive: %r is a directory; name the archive file" % (label, archive))
    if str(entry.get("pull_policy") or "IfNotPresent") == "Always":
        problems.append("%s.image_archive: with pull_policy Always the kubelet pulls %s from its registry at every "
                        "start and never uses the imported image; use IfNotPresent or Never (%s.pull_policy)"
                        % (label, entry.get("image"), label))


def _check_cache_job(label, name, entry, problems):
    job = entry.get("cache_job")
    if job is None:
        return
    where = "%s.cache_job" % label
    if not isinstance(job, dict):
        problems.append("%s: must be a mapping {command, args, env, timeout}, got %r" % (where, job))
        return
    _check_fields(where, job, CACHE_JOB_FIELDS, problems)
    command = job.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(item, str) and item for item in command):
        problems.append("%s.command: the command the Job runs, a list of strings (such as [python, -c]), got %r"
                        % (where, command))
    args = job.get("args")
    if args is not None and (not isinstance(args, list) or not all(isinstance(item, str) for item in args)):
        problems.append("%s.args: must be a list of strings, got %r" % (where, args))
    env = job.get("env")
    if env is not None and not isinstance(env, dict):
        problems.append("%s.env: must be a mapping of variable names to values" % where)
    for key, value in (env if isinstance(env, dict) else {}).items():
        if not ENV_NAME_RE.match(str(key)):
            problems.append("%s.env: %r is not an environment variable name" % (where, key))
        if isinstance(value, (dict, list)):
            problems.append("%s.env.%s: must be a plain value" % (where, key))
    timeout = job.get("timeout")
    if timeout is not None and ((_int(timeout) or 0) < 10):
        problems.append("%s.timeout: %r is not a number of seconds (10 or more)" % (where, timeout))
    if len(job_name(name, "0" * 8)) > JOB_NAME_MAX:
        problems.append("%s: the Job's name %s would be longer than %d characters; give the app a shorter name"
                        % (where, job_name(name, "<8 hex>"), JOB_NAME_MAX))


def _check_entry(name, entry, all_entries, nodes, ranges, presets, problems):
    label = "apps_catalogue.%s" % name
    _check_fields(label, entry, FIELDS, problems)
    if not NAME_RE.match(name):
        problems.append("%s: the name must be lower-case letters, digits and '-', starting with a letter (it names "
                        "the app's Deployment and Service)" % label)
    if entry.get("state", "stopped") not in STATES:
        problems.append("%s.state: %r is not one of %s" % (label, entry.get("state"), ", ".join(STATES)))
    problem = image_problem(entry.get("image"))
    if problem:
        problems.append("%s.image: %s" % (label, problem))
    if entry.get("pull_policy", "IfNotPresent") not in PULL_POLICIES:
        problems.append("%s.pull_policy: %r is not one of %s" % (label, entry.get("pull_policy"), ", ".join(PULL_POLICIES)))
    placed = _nodes_of(entry)
    if not placed:
        problems.append("%s.node: missing; name the node the app runs on (%s)" % (label, ", ".join(sorted(nodes))))
    for node in placed:
        if node not in nodes:
            problems.append("%s.node: %r is not a node of the inventory (%s)" % (label, node, ", ".join(sorted(nodes))))
    if len(set(placed)) != len(placed):
        problems.append("%s.node: a node is listed twice (one replica per node)" % label)
    gpus = _int(entry.get("gpus", 0))
    if gpus is None or gpus < 0:
        problems.append("%s.gpus: %r is not a number of GPUs" % (label, entry.get("gpus")))
    else:
        for node in placed:
            if node in nodes and gpus > nodes[node]:
                problems.append("%s.gpus: %d GPU(s) asked, but %s offers %d (spark_gpu_count in its host_vars)"
                                % (label, gpus, node, nodes[node]))
    _check_resources(label, entry.get("resources"), problems)
    _check_storage(label, name, entry, all_entries, problems)
    address = entry.get("address")
    if address not in (None, ""):
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            ip = None
            problems.append("%s.address: %r is not an IP address" % (label, address))
        if ip is not None and not in_pool(ip, ranges):
            problems.append("%s.address: %s is outside the MetalLB pool (metallb_address_pool: %s), so MetalLB would "
                            "never assign it" % (label, ip, ", ".join("%s-%s" % pair for pair in ranges) or "empty"))
    ports = entry.get("ports")
    if not isinstance(ports, list) or not ports:
        problems.append("%s.ports: list the app's ports, each {name, port, target_port}" % label)
        ports = []
    seen = set()
    for index, port in enumerate(ports):
        port = port if isinstance(port, dict) else {}
        for field in ("port", "target_port"):
            number = _int(port.get(field, port.get("port")))
            if number is None or not 1 <= number <= 65535:
                problems.append("%s.ports[%d].%s: %r is not a TCP port" % (label, index, field, port.get(field)))
        if not port.get("name") or not NAME_RE.match(str(port.get("name"))) or len(str(port.get("name"))) > 15:
            problems.append("%s.ports[%d].name: %r is not a port name (lower case, at most 15 characters)"
                            % (label, index, port.get("name")))
        if port.get("port") in seen:
            problems.append("%s.ports[%d].port: %s is listed twice" % (label, index, port.get("port")))
        seen.add(port.get("port"))
    health = entry.get("health_path")
    if health is not None and not str(health).startswith("/"):
        problems.append("%s.health_path: %r must start with /" % (label, health))
    timeout = _int(entry.get("startup_timeout", 300))
    if timeout is None or timeout < 10:
        problems.append("%s.startup_timeout: %r is not a number of seconds (10 or more)" % (label, entry.get("startup_timeout")))
    env = entry.get("env") or {}
    if not isinstance(env, dict):
        problems.append("%s.env: must be a mapping of variable names to values" % label)
        env = {}
    for key, value in env.items():
        if not ENV_NAME_RE.match(str(key)):
            problems.append("%s.env: %r is not an environment variable name" % (label, key))
        if isinstance(value, (dict, list)):
            problems.append("%s.env.%s: must be a plain value" % (label, key))
    for field in ("command", "args"):
        if entry.get(field) is not None and not isinstance(entry.get(field), list):
            problems.append("%s.%s: must be a list of strings" % (label, field))
    if entry.get("preset") not in (None, "") and (entry.get("command") or entry.get("args")):
        problems.append("%s.preset: an app with a preset gets its command from the preset; remove command and args"
                        % label)
    if entry.get("shm_size") is not None and not QUANTITY_RE.match(str(entry.get("shm_size"))):
        problems.append("%s.shm_size: %r is not a size such as 8Gi" % (label, entry.get("shm_size")))
    _check_preset(label, entry, presets, problems)
    _check_models(label, entry, problems)
    _check_image_archive(label, entry, problems)
    _check_cache_job(label, name, entry, problems)


def check_catalogue(catalogue, nodes, pool, overrides=None, presets=None, selected=None, run_state="inventory",
                    purge=False, purge_confirm=None, services=None, namespace="apps", extra_apps=None):
    """Every problem, one message each (empty when the catalogue and the run's choices are sound).

    ``nodes``: node name -> GPUs it offers (spark_gpu_count). ``pool``: metallb_address_pool. ``selected``: the
    apps named with ``-e apps=`` (names or a comma-separated string; empty: every enabled app). ``run_state``: one of
    RUN_STATES. ``purge``/``purge_confirm``: the purge request and the apps it is confirmed for. ``services``: the
    Services the cluster holds (a ``k8s_info`` list), to refuse an address another Service already has; None when
    not read (preflight). ``extra_apps``: names ``-e apps=`` may name though they are not in the catalogue (apps
    another role manages, such as the dashboard)."""
    problems = []
    if not isinstance(catalogue, dict):
        return ["apps_catalogue: must be a mapping of app names to entries, got %r" % (catalogue,)]
    if overrides is not None and not isinstance(overrides, dict):
        problems.append("apps_overrides: must be a mapping of app names to fields, got %r" % (overrides,))
        overrides = {}
    if run_state not in RUN_STATES:
        problems.append("app_state / apps_selected_state: %r is not one of %s" % (run_state, ", ".join(RUN_STATES)))
        run_state = "inventory"
    if not isinstance(namespace, str) or not NAME_RE.match(namespace):
        problems.append("apps_namespace: %r is not a namespace name" % (namespace,))
    all_entries = entries(catalogue, overrides)
    ranges = pool_ranges(pool)
    known = sorted(name for name, entry in all_entries.items() if isinstance(entry, dict) and not entry.get("_override_only"))
    for name in sorted(all_entries):
        entry = all_entries[name]
        if isinstance(entry, dict) and entry.get("_override_only"):
            problems.append("apps_overrides.%s: not an app of apps_catalogue (%s)" % (name, ", ".join(known)))
        elif not isinstance(entry, dict):
            problems.append("apps_catalogue.%s: must be a mapping of the app's fields, got %r" % (name, entry))
    enabled = [name for name in known if truthy(all_entries[name].get("enabled"), True)]
    extra = names_of(extra_apps)
    for name in extra:
        if name in known:
            problems.append("apps_catalogue.%s: %s is also an extra app of this run, managed by its own role; give the "
                            "catalogue's entry another name" % (name, name))

    chosen = names_of(selected)
    for name in chosen:
        if name in extra:
            continue
        if name not in known:
            also = "; the extra apps %s" % ", ".join(extra) if extra else ""
            problems.append("apps: unknown app %r (apps_catalogue has %s%s)" % (name, ", ".join(known) or "none", also))
        elif name not in enabled:
            problems.append("apps: %s is not enabled (apps_catalogue.%s.enabled is false); enable it in the inventory "
                            "first" % (name, name))
    acted = [name for name in enabled if not chosen or name in chosen]

    for name in enabled:
        if all_entries[name].get("namespace") is not None and not NAME_RE.match(str(all_entries[name]["namespace"])):
            problems.append("apps_catalogue.%s.namespace: %r is not a namespace name" % (name, all_entries[name]["namespace"]))
        _check_entry(name, all_entries[name], all_entries, nodes, ranges, presets, problems)

    states = dict((name, _state(all_entries[name], name, chosen, run_state)) for name in enabled)
    owners = {}
    for name in enabled:
        address = all_entries[name].get("address")
        if address in (None, "") or states[name] == "absent":
            continue
        owners.setdefault(str(address), []).append(name)
    for address, names in sorted(owners.items()):
        if len(names) > 1:
            problems.append("apps_catalogue: %s share the address %s (apps_catalogue.<app>.address): give each app its "
                            "own" % (" and ".join(names), address))
    if services is not None:
        problems.extend(_service_conflicts(all_entries, enabled, states, services, namespace))

    per_node = {}
    for name in enabled:
        gpus = _int(all_entries[name].get("gpus", 0)) or 0
        if states[name] == "started" and gpus > 0:
            for node in _nodes_of(all_entries[name]):
                per_node.setdefault(node, []).append((name, gpus))
    for node, asked in sorted(per_node.items()):
        total = sum(gpus for _name, gpus in asked)
        if len(asked) > 1 and node in nodes and total > nodes[node]:
            problems.append("%s: the started apps %s ask for %d GPU(s) together, the node offers %d (spark_gpu_count): "
                            "stop one (apps_catalogue.<app>.state: stopped) or move it (apps_catalogue.<app>.node)"
                            % (node, ", ".join("%s (%d)" % pair for pair in asked), total, nodes[node]))

    confirmed = names_of(purge_confirm)
    for name in confirmed:
        if name not in known:
            problems.append("apps_purge_confirm: unknown app %r (apps_catalogue has %s)" % (name, ", ".join(known)))
        elif name not in acted or states.get(name) != "absent":
            problems.append("apps_purge_confirm: names %s, which this run does not remove (its state is %s); purge only "
                            "goes with absent" % (name, states.get(name, "not acted on")))
    if truthy(purge):
        for name in acted:
            if states[name] == "absent" and name not in confirmed:
                problems.append("apps_purge: %s is removed with purge, which deletes its claim and data, but "
                                "apps_purge_confirm does not name it; add -e apps_purge_confirm=%s to confirm"
                                % (name, name))
    elif confirmed:
        problems.append("apps_purge_confirm: names %s but apps_purge is false: nothing would be purged; set "
                        "apps_purge: true too" % ", ".join(confirmed))
    return problems


def service_addresses(service):
    """Every address a Service holds or asks MetalLB for (status, annotations, spec.loadBalancerIP)."""
    found = set()
    metadata = service.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    for key in LB_ANNOTATIONS_READ:
        for item in str(annotations.get(key) or "").split(","):
            if item.strip():
                found.add(item.strip())
    spec = service.get("spec") or {}
    if spec.get("loadBalancerIP"):
        found.add(str(spec["loadBalancerIP"]))
    for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if ingress.get("ip"):
            found.add(str(ingress["ip"]))
    return found


def _service_conflicts(all_entries, enabled, states, services, namespace):
    problems = []
    own = dict(((_namespace(all_entries[name], namespace), name), name) for name in enabled)
    for service in services or []:
        metadata = service.get("metadata") or {}
        key = (metadata.get("namespace"), metadata.get("name"))
        for name in enabled:
            address = all_entries[name].get("address")
            if address in (None, "") or states[name] == "absent" or own.get(key) == name:
                continue
            if str(address) in service_addresses(service):
                problems.append("apps_catalogue.%s.address: %s is already used by Service %s/%s; give the app another "
                                "address of the pool" % (name, address, key[0], key[1]))
    return problems


# --- rendering -----------------------------------------------------------------------------------------------------

def _namespace(entry, default):
    return str(entry.get("namespace") or default)


def labels(name):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY}


def _meta(name, namespace, extra=None):
    metadata = {"name": name, "namespace": namespace, "labels": labels(extra or name)}
    return metadata


def vllm_command(preset):
    """``vllm serve`` and its arguments from a preset (model, dtype, max length, GPU memory share, extra args)."""
    command = ["vllm", "serve", str(preset["model"])]
    if preset.get("dtype"):
        command += ["--dtype", str(preset["dtype"])]
    if preset.get("max_model_len") is not None:
        command += ["--max-model-len", str(preset["max_model_len"])]
    if preset.get("gpu_memory_utilization") is not None:
        command += ["--gpu-memory-utilization", str(preset["gpu_memory_utilization"])]
    command += ["--tensor-parallel-size", "1"]
    command += [str(arg) for arg in preset.get("extra_args") or []]
    return command


def _quantities(values):
    return dict((str(key), str(value)) for key, value in sorted((values or {}).items()))


def _probe(path, port, period, failures):
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _preset(name, entry, presets):
    if entry.get("preset") in (None, ""):
        return None
    preset = (presets or {}).get(str(entry["preset"]))
    if not isinstance(preset, dict):
        raise AppsInputError("%s: unknown preset %r" % (name, entry.get("preset")))
    return preset


def _env(entry, preset=None, hf_secret=None, extra=None):
    """The container's env list: the entry's, its preset's, then ``extra`` (a cache Job's) over them, sorted by name;
    HF_TOKEN from the app's token Secret last."""
    env = dict((str(key), str(value)) for key, value in (entry.get("env") or {}).items())
    for values in ((preset or {}).get("env"), extra):
        env.update((str(key), str(value)) for key, value in (values or {}).items())
    env_list = [{"name": key, "value": value} for key, value in sorted(env.items())]
    if hf_secret:
        reference = {"name": hf_secret, "key": HF_SECRET_KEY, "optional": True}
        env_list.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": reference}})
    return env_list


def _claim_volume(name, entry, all_entries):
    """``(volumes, mounts)`` of the app's claim (empty lists when it has none)."""
    mounted = _storage(name, entry, all_entries)
    if not mounted:
        return [], []
    mounts = []
    for mount in entry["storage"].get("mounts") or []:
        item = {"name": "data", "mountPath": str(mount["path"])}
        if mount.get("sub_path"):
            item["subPath"] = str(mount["sub_path"])
        mounts.append(item)
    return [{"name": "data", "persistentVolumeClaim": {"claimName": mounted[0]}}], mounts


def _tolerations():
    # The inventory places apps on both Sparks, the control plane included: kubeadm's taint keeps every other pod off
    # it, and the node pinning already says where this one goes.
    return [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]


def jobs_selector(name):
    """The label selector of the app's cache Jobs (their names carry a hash, so they are found by label)."""
    return "app.kubernetes.io/name=%s,%s=true" % (name, CACHE_JOB_LABEL)


def cache_job(name, entry, all_entries, namespace, presets=None, hf_secret=None):
    """The Job that fills the app's cache (a model download, say) before its Deployment starts: the app's image, pull
    policy, env (the entry's and the Job's own), token and claim, on the first of its nodes (the one node of a
    ReadWriteOnce claim; any node reaches a ReadWriteMany one), restarted on failure, two retries.

    Its name ends in 8 hex digits of a hash of its pod spec: a Job's template cannot change, so a changed cache_job is a
    new Job, and the same one is found again, complete, by the next run (no ttlSecondsAfterFinished: it stays). Its
    pods do not carry the app's name label, which the app's Service and anti-affinity select on."""
    job = entry["cache_job"]
    container = {"name": "cache", "image": str(entry["image"]).strip(),
                 "imagePullPolicy": str(entry.get("pull_policy") or "IfNotPresent"),
                 "command": [str(item) for item in job["command"]]}
    if job.get("args"):
        container["args"] = [str(item) for item in job["args"]]
    env_list = _env(entry, _preset(name, entry, presets), hf_secret, job.get("env"))
    if env_list:
        container["env"] = env_list
    volumes, mounts = _claim_volume(name, entry, all_entries)
    if mounts:
        container["volumeMounts"] = mounts
    pod = {"containers": [container], "restartPolicy": "OnFailure",
           "nodeSelector": {HOSTNAME_LABEL: _nodes_of(entry)[0]}, "tolerations": _tolerations()}
    if volumes:
        pod["volumes"] = volumes
    text = json.dumps(pod, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    metadata = _meta(job_name(name, digest), namespace, name)
    metadata["labels"][CACHE_JOB_LABEL] = "true"
    pod_labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY,
                  "app.kubernetes.io/component": "cache", APP_LABEL: name, CACHE_JOB_LABEL: "true"}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": pod_labels}, "spec": pod}}}


def deployment(name, entry, all_entries, namespace, replicas, presets=None, hf_secret=None):
    """The app's Deployment: on its node(s), its resources, GPUs (limit and the nvidia RuntimeClass) only when it
    asks for some, its claim's mounts, probes on its health path, ``replicas`` pods (0 when stopped)."""
    placed = _nodes_of(entry)
    gpus = _int(entry.get("gpus", 0)) or 0
    resources = entry.get("resources") or {}
    requests = _quantities(resources.get("requests"))
    limits = _quantities(resources.get("limits"))
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    ports = entry.get("ports") or []
    first = _int((ports[0] or {}).get("target_port", ports[0].get("port"))) if ports else None
    container = {
        "name": name,
        "image": str(entry["image"]).strip(),
        "imagePullPolicy": str(entry.get("pull_policy") or "IfNotPresent"),
        "ports": [{"name": str(port["name"]), "containerPort": _int(port.get("target_port", port.get("port"))),
                   "protocol": "TCP"} for port in ports],
    }
    preset = _preset(name, entry, presets)
    if preset is not None:
        container["command"] = vllm_command(preset)
    else:
        if entry.get("command"):
            container["command"] = [str(item) for item in entry["command"]]
        if entry.get("args"):
            container["args"] = [str(item) for item in entry["args"]]
    env_list = _env(entry, preset, hf_secret)
    if env_list:
        container["env"] = env_list
    if requests or limits:
        container["resources"] = {}
        if requests:
            container["resources"]["requests"] = requests
        if limits:
            container["resources"]["limits"] = limits
    health = entry.get("health_path")
    if health and first:
        period = 10
        startup = max(1, (_int(entry.get("startup_timeout", 300)) or 300) // period)
        container["startupProbe"] = _probe(str(health), first, period, startup)
        container["readinessProbe"] = _probe(str(health), first, period, 3)
        container["livenessProbe"] = _probe(str(health), first, 20, 3)
    volumes, mounts = _claim_volume(name, entry, all_entries)
    mounted = _storage(name, entry, all_entries)
    if entry.get("shm_size"):
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": str(entry["shm_size"])}})
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    if mounts:
        container["volumeMounts"] = mounts
    pod = {"containers": [container]}
    if len(placed) == 1:
        pod["nodeSelector"] = {HOSTNAME_LABEL: placed[0]}
    else:
        pod["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": placed}]}]}},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}}, "topologyKey": HOSTNAME_LABEL}]},
        }
    pod["tolerations"] = _tolerations()
    if gpus:
        pod["runtimeClassName"] = GPU_RUNTIME_CLASS
    if volumes:
        pod["volumes"] = volumes
    # A ReadWriteOnce claim cannot be mounted by the old and the new pod at once: replace, never roll.
    # A GPU the node has only one of cannot go to the new pod before the old one lets it go either.
    single = bool(mounted and mounted[1] in ("ReadWriteOnce", "ReadWriteOncePod"))
    strategy = {"type": "Recreate"} if single or gpus else {"type": "RollingUpdate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": labels(name)}, "spec": pod},
        },
    }


def claim(name, entry, namespace):
    storage = entry["storage"]
    spec = {"accessModes": [str(storage.get("access_mode") or "ReadWriteOnce")],
            "resources": {"requests": {"storage": str(storage["size"])}}}
    if storage.get("class"):
        spec["storageClassName"] = str(storage["class"])
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(str(storage.get("claim") or "%s-data" % name), namespace, name), "spec": spec}


def service(name, entry, namespace):
    """A LoadBalancer Service on the app's fixed address (a ClusterIP Service when it has none)."""
    ports = [{"name": str(port["name"]), "port": _int(port["port"]),
              "targetPort": _int(port.get("target_port", port["port"])), "protocol": "TCP"}
             for port in entry.get("ports") or []]
    metadata = _meta(name, namespace)
    spec = {"selector": {"app.kubernetes.io/name": name}, "ports": ports}
    if entry.get("address") not in (None, ""):
        metadata["annotations"] = {LB_ANNOTATION: str(entry["address"])}
        spec["type"] = "LoadBalancer"
    else:
        spec["type"] = "ClusterIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def namespace_object(name):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF,
                                                  "app.kubernetes.io/managed-by": MANAGED_BY}}}


def _ref(obj):
    metadata = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {"name": metadata["name"], "namespace": metadata.get("namespace")}}


def plan(catalogue, overrides=None, presets=None, selected=None, run_state="inventory", purge=False,
         purge_confirm=None, namespace="apps"):
    """Per app this run acts on (enabled, and named in ``selected`` when that is given), in catalogue order:

    ``{"name", "state", "nodes", "namespace", "address", "port", "url", "gpus", "image", "present": [objects],
    "absent": [object references], "kept": [object references], "hf_secret", "model_api", "models" (each with its
    tag, ``:latest`` when it named none), "image_archive", "cache_job" (``{"name", "timeout"}`` of the Job in
    ``present``, or None), "jobs_selector" (the label selector of the app's cache Jobs)}``.

    started: claim, cache Job (when the entry has a cache_job), Deployment (replicas 1, or one per node), Service.
    stopped: claim, Deployment with 0 replicas and Service (everything kept; no Job). absent: Deployment, Service and
    the token Secret removed (the cache Jobs by ``jobs_selector``); the claim kept, unless purged (purge and the app
    named in purge_confirm). An app sharing another's claim never owns it. The caller checks first
    (check_catalogue); this raises AppsInputError on what it cannot render."""
    all_entries = entries(catalogue, overrides)
    chosen = names_of(selected)
    confirmed = names_of(purge_confirm)
    apps = []
    for name, entry in all_entries.items():
        if not isinstance(entry, dict) or entry.get("_override_only") or not truthy(entry.get("enabled"), True):
            continue
        if chosen and name not in chosen:
            continue
        state = _state(entry, name, chosen, run_state if run_state in RUN_STATES else "inventory")
        if state not in STATES:
            raise AppsInputError("%s: state %r is not one of %s" % (name, state, ", ".join(STATES)))
        space = _namespace(entry, namespace)
        placed = _nodes_of(entry)
        hf_secret = "%s-hf-token" % name if truthy(entry.get("hf_token")) else None
        replicas = len(placed) if state == "started" else 0
        objects = []
        owned = entry.get("storage") and not (entry.get("storage") or {}).get("shared_with")
        if owned:
            objects.append(claim(name, entry, space))
        job = None
        if state == "started" and isinstance(entry.get("cache_job"), dict):
            job = cache_job(name, entry, all_entries, space, presets, hf_secret)
            objects.append(job)
        objects.append(deployment(name, entry, all_entries, space, replicas, presets, hf_secret))
        objects.append(service(name, entry, space))
        ports = entry.get("ports") or [{}]
        port = _int(ports[0].get("port"))
        address = entry.get("address") or None
        health = entry.get("health_path") or "/"
        item = {"name": name, "state": state, "nodes": placed, "namespace": space, "address": address, "port": port,
                "url": "http://%s:%s%s" % (address, port, health) if address and port else None,
                "gpus": _int(entry.get("gpus", 0)) or 0, "image": str(entry.get("image")), "hf_secret": hf_secret,
                "model_api": entry.get("model_api") or None,
                "models": [model_name(model) for model in entry.get("models") or []],
                "image_archive": entry.get("image_archive") or None,
                "cache_job": None, "jobs_selector": jobs_selector(name),
                "present": [], "absent": [], "kept": []}
        if job is not None:
            item["cache_job"] = {"name": job["metadata"]["name"], "timeout": _int(entry["cache_job"].get("timeout"))}
        if state == "absent":
            # The workload first, the claim (when purged) last: its pods must be gone before it can go.
            for obj in objects[::-1]:
                if obj["kind"] == "PersistentVolumeClaim" and not (truthy(purge) and name in confirmed):
                    item["kept"].append(_ref(obj))
                elif obj["kind"] != "PersistentVolumeClaim":
                    item["absent"].append(_ref(obj))
            if hf_secret:
                item["absent"].append({"apiVersion": "v1", "kind": "Secret",
                                       "metadata": {"name": hf_secret, "namespace": space}})
            if owned and truthy(purge) and name in confirmed:
                item["absent"].append(_ref(objects[0]))
        else:
            item["present"] = objects
        apps.append(item)
    return apps


def apply_steps(apps, ready_timeout=600):
    """Each object of the apps' ``present`` lists, in order, with what the apply waits for:
    ``{"app", "state", "object", "wait", "wait_condition", "wait_timeout"}``. A started app's cache Job is waited for
    until it is Complete (its cache_job.timeout, else ``ready_timeout``), its Deployment's rollout for
    ``ready_timeout``; nothing else is waited for."""
    steps = []
    for app in apps:
        for obj in app["present"]:
            step = {"app": app["name"], "state": app["state"], "object": obj, "wait": False, "wait_condition": None,
                    "wait_timeout": ready_timeout}
            if app["state"] == "started" and obj["kind"] == "Job":
                step["wait"] = True
                step["wait_condition"] = {"type": "Complete", "status": "True"}
                step["wait_timeout"] = (app.get("cache_job") or {}).get("timeout") or ready_timeout
            elif app["state"] == "started" and obj["kind"] == "Deployment":
                step["wait"] = True
            steps.append(step)
    return steps


def model_pulls(apps):
    """``[{"app", "url", "models"}]``: the models to pull through each started app's Ollama API (its LoadBalancer
    address and first port), for the apps with a list."""
    return [{"app": app["name"], "url": "http://%s:%s" % (app["address"], app["port"]), "models": list(app["models"])}
            for app in apps
            if app["state"] == "started" and app.get("model_api") == "ollama" and app.get("models")
            and app.get("address") and app.get("port")]


def image_imports(apps):
    """``[{"node", "app", "image", "archive"}]``: for each app started or stopped that names an image_archive, one
    entry per node it may run on; ordered by node, then app; one entry per node and image (the first app by name)
    when two apps share an image. The role imports an archive only where its image is missing."""
    found = []
    for app in apps:
        if app["state"] == "absent" or not app.get("image_archive"):
            continue
        for node in app["nodes"]:
            found.append({"node": node, "app": app["name"], "image": app["image"], "archive": app["image_archive"]})
    result = []
    seen = set()
    for entry in sorted(found, key=lambda item: (item["node"], item["app"])):
        if (entry["node"], entry["image"]) not in seen:
            seen.add((entry["node"], entry["image"]))
            result.append(entry)
    return result


def extras(extra_apps, selected=None, run_state="inventory"):
    """Extra app name -> the run's state (``inventory`` when the run gives none), for each extra app the run acts on:
    those named in ``selected``, or every one when it names no app."""
    chosen = names_of(selected)
    state = run_state if run_state not in (None, "") else "inventory"
    return dict((name, state) for name in names_of(extra_apps) if not chosen or name in chosen)


def namespaces(apps):
    """The Namespace objects the apps that are not removed live in (each once)."""
    seen = []
    for app in apps:
        if app["state"] != "absent" and app["namespace"] not in seen:
            seen.append(app["namespace"])
    return [namespace_object(name) for name in seen]


def summary_lines(apps, probes=None):
    """One line per app: name, state, node(s), address, and whether its health endpoint answered.

    ``probes``: app name -> ``{"status": HTTP status or -1, "msg": ...}`` from the controller (absent when the app was
    not probed: stopped, removed, or without an address)."""
    lines = []
    for app in apps:
        where = ", ".join(app["nodes"]) or "no node"
        address = "%s:%s" % (app["address"], app["port"]) if app.get("address") else "no LoadBalancer address"
        if app["state"] != "started":
            health = "not probed (%s)" % app["state"]
        elif not app.get("url"):
            health = "not probed (no address)"
        else:
            probe = (probes or {}).get(app["name"])
            status = probe.get("status") if isinstance(probe, dict) else None
            if status is None:
                health = "not probed"
            elif isinstance(status, int) and 200 <= status < 400:
                health = "answers (%s %d)" % (app["url"], status)
            else:
                reason = (probe.get("msg") or "").split("\n")[0][:120]
                health = "DOES NOT ANSWER (%s: %s)" % (app["url"], reason or "HTTP %s" % status)
        lines.append("%s: %s on %s, %s, health %s" % (app["name"], app["state"], where, address, health))
    return lines
