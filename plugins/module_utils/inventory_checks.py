# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure validation of the cluster inventory: one clear message per problem, nothing else.

Input is plain data, so the checks run the same under a filter plugin or a unit test:

* ``check_cluster(hosts, groups, validated, cluster)``: every host's own values (node names, numbers and their
  bounds, interface names, kubernetes_version, NCCL sizes, settings that must agree across nodes), then
  ``check_inventory`` with the control plane's settings.
* ``check_inventory(nodes, settings, groups, cluster)``: the cluster as a whole (groups, networks, overlaps,
  addresses) from per-node addresses and one set of cluster-wide settings.
* ``role_params(options, defaults, values)``: a role's defaults merged under one host's values, for the caller to
  validate against the role's argument spec (the caller owns Ansible's validator; this module imports no Ansible).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils.limits import (
    MTU_MAX,
    MTU_MIN,
    PORT_MAX,
    PORT_MIN,
    duration_problem,
    interface_name_problem,
    node_name_problem,
    parse_kubernetes_version,
)
from ansible_collections.dgx_spark.cluster.plugins.module_utils.addons import (
    version_problem,
    version_tuple,
)
from ansible_collections.dgx_spark.cluster.plugins.module_utils.apps import (
    check_catalogue,
    run_choices,
)
from ansible_collections.dgx_spark.cluster.plugins.module_utils.dashboard import check_settings as dashboard_settings_problems
from ansible_collections.dgx_spark.cluster.plugins.module_utils.nccl import (
    SAFE_MAX_BYTES,
    NcclInputError,
    format_size,
    parse_size,
)

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", re.IGNORECASE)

# The bounds of every number the inventory and the roles take, in one table: name -> (lowest, highest or None,
# unit). Argument specs have no ranges; preflight applies these to every host's values (after the argument spec
# has turned numeric strings such as extra vars into numbers). Every timeout has a lower bound of 1: 0 would mean
# "no limit" to some tools and a negative one makes coreutils timeout fail (rc 125) after the step it guards began.
BOUNDS = {
    "fabric_mtu": (MTU_MIN, MTU_MAX, "bytes"),
    "fabric_min_speed_mbps": (1, None, "Mb/s"),
    "kubernetes_api_port": (PORT_MIN, PORT_MAX, "a TCP port"),
    "spark_ssh_port": (PORT_MIN, PORT_MAX, "a TCP port"),
    "control_plane_init_timeout": (1, None, "seconds"),
    "control_plane_ready_timeout": (1, None, "seconds"),
    "worker_join_timeout": (1, None, "seconds"),
    "worker_reset_timeout": (1, None, "seconds"),
    "worker_ready_grace": (1, None, "seconds"),
    "worker_ready_timeout": (1, None, "seconds"),
    "worker_restart_ready_timeout": (1, None, "seconds"),
    "summary_ready_timeout": (1, None, "seconds"),
    "nccl_timeout": (1, None, "seconds"),
    "nccl_min_avg_busbw_gbs": (0, None, "GB/s"),
    "stop_drain_timeout": (1, None, "seconds"),
    "power_suspend_delay": (1, None, "seconds"),
    "power_wake_port": (PORT_MIN, PORT_MAX, "a UDP port"),
    "power_wake_packets": (1, None, "packets"),
    "power_wake_timeout": (1, None, "seconds"),
    "power_wake_probe_timeout": (1, None, "seconds"),
    "etcd_backup_keep": (1, None, "snapshots"),
    "etcd_backup_node_keep": (0, None, "snapshots"),
    "etcd_backup_restore_stop_timeout": (1, None, "seconds"),
    "etcd_backup_restore_start_timeout": (1, None, "seconds"),
    "etcd_backup_restore_api_timeout": (1, None, "seconds"),
    "cluster_lock_wait_timeout": (0, None, "seconds"),
    "cluster_lock_stale_after": (60, None, "seconds"),
    "cni_ready_timeout": (1, None, "seconds"),
    "cni_ip_block_size": (20, 32, "a prefix length"),
    "metallb_ready_timeout": (1, None, "seconds"),
    "storage_ready_timeout": (1, None, "seconds"),
    "storage_longhorn_replica_count": (1, None, "replicas"),
    "gpu_operator_ready_timeout": (1, None, "seconds"),
    "gpu_operator_smoke_timeout": (1, None, "seconds"),
    "apps_ready_timeout": (1, None, "seconds"),
    "apps_probe_timeout": (1, None, "seconds"),
}

# Every add-on chart version must be one pinned release.
CHART_VERSION_KEYS = ("cni_chart_version", "metallb_chart_version", "storage_longhorn_chart_version",
                      "storage_nfs_chart_version", "gpu_operator_chart_version")
# GB10 (DGX Spark) support in the GPU Operator starts here (NVIDIA/gpu-operator#1794: earlier device plugins crash on
# "error getting device memory: Not Supported").
GPU_OPERATOR_MIN_VERSION = (25, 10, 0)

# Per-node values (host_vars) and the cluster-wide settings the whole-cluster checks read.
NODE_KEYS = ("spark_lan_ip", "spark_fabric_addresses", "spark_wol_mac")
SETTING_KEYS = ("spark_lan_subnet", "fabric_ports", "fabric_mtu", "kubernetes_pod_cidr", "kubernetes_service_cidr",
                "kubernetes_api_address", "kubernetes_api_port", "metallb_address_pool",
                "kubernetes_pod_cidr_overlap_accepted")
# Settings every node must hold with the same value (of fabric_ports only the subnets: a node may prefer other
# interface names).
AGREE_KEYS = ("spark_lan_subnet", "fabric_ports", "fabric_mtu", "kubernetes_version", "kubernetes_api_address",
              "kubernetes_api_port", "kubernetes_pod_cidr", "kubernetes_service_cidr",
              "kubernetes_pod_cidr_overlap_accepted", "metallb_address_pool")
# Every variable check_cluster reads from a host, beyond the options of the validated argument specs.
HOST_KEYS = tuple(sorted(set(NODE_KEYS + SETTING_KEYS + AGREE_KEYS + tuple(BOUNDS)
                             + ("kubernetes_version", "nccl_min_bytes", "nccl_max_bytes", "nccl_allow_large_sizes",
                                "worker_token_ttl", "spark_lan_interface", "spark_gpu_count",
                                # The apps playbook's shorthands, -e apps=ollama,openwebui -e app_state=stopped.
                                "apps", "app_state"))))

# What check_inventory knows about an existing cluster when it judges the pod network (see _pod_overlap).
CLUSTER_STATES = ("defer", "exists", "new", "unknown")
SUGGESTED_POD_CIDR = "10.244.0.0/16"

_INT_RE = re.compile(r"^\s*[-+]?\d+\s*$")
_FLOAT_RE = re.compile(r"^\s*[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?\s*$")
_TRUE = frozenset(["true", "yes", "on", "1", "y", "t"])


def _number(value):
    """An int or float from a number or a numeric string (extra vars are strings); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return None


def _bool(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE if value is not None else False


def _is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _network(value, name, problems):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        problems.append("%s: '%s' is not a valid network in CIDR form (%s)" % (name, value, exc))
        return None


def _address(value, name, problems):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        problems.append("%s: '%s' is not a valid IP address" % (name, value))
        return None


def _interface(value, name, problems):
    try:
        iface = ipaddress.ip_interface(str(value))
    except ValueError:
        problems.append("%s: '%s' is not an address with a prefix, like 10.10.10.1/24" % (name, value))
        return None
    if "/" not in str(value):
        problems.append("%s: '%s' has no prefix length; write it like 10.10.10.1/24" % (name, value))
        return None
    if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        problems.append("%s: '%s' is the network or broadcast address of its subnet" % (name, value))
        return None
    return iface


def _pool_range(entry, name, problems):
    text = str(entry)
    if "-" in text:
        first, last = text.split("-", 1)
        lo, hi = _address(first.strip(), name, problems), _address(last.strip(), name, problems)
        if lo is None or hi is None:
            return None
        if int(hi) < int(lo):
            problems.append("%s: range '%s' ends before it starts" % (name, text))
            return None
        return lo, hi
    net = _network(text, name, problems)
    if net is None:
        return None
    return net.network_address, net.broadcast_address


# The one overlap an existing cluster may already live with: the old toolkit's pod CIDR 192.168.0.0/16 contains the
# LAN 192.168.86.0/24 (and so the MetalLB pool), and a running cluster cannot change its pod network in place.
TOLERATED_OVERLAPS = frozenset([("spark_lan_subnet", "kubernetes_pod_cidr")])


def _pod_overlap(overlap, settings, cluster, problems, warnings):
    """Judge the tolerated overlap by what exists: ``cluster`` is "exists" (a warning), "new" or "unknown" (refused
    unless kubernetes_pod_cidr_overlap_accepted, then a warning) or "defer" (not judged yet: the caller checks again
    once it knows whether the control plane has a cluster)."""
    risk = "pods may get addresses that collide with LAN hosts and the MetalLB pool"
    if cluster == "defer":
        return
    if cluster == "exists":
        warnings.append("%s: %s. The existing cluster keeps its pod network (kubeadm cannot change it in place); keep "
                        "the LAN out of the CNI's IP pool" % (overlap, risk))
    elif _bool(settings.get("kubernetes_pod_cidr_overlap_accepted")):
        warnings.append("%s: %s; building the new cluster anyway (kubernetes_pod_cidr_overlap_accepted is true)"
                        % (overlap, risk))
    else:
        why = ("no cluster exists yet (no /etc/kubernetes/admin.conf on the control plane)" if cluster == "new" else
               "preflight cannot tell whether a cluster exists (preflight_check_access is false), so it takes it as new")
        problems.append("%s: %s, and kubeadm init would build the cluster with this pod network, where %s. Set "
                        "kubernetes_pod_cidr to a network apart from the LAN, the fabric and the service CIDR (for "
                        "example %s), or set kubernetes_pod_cidr_overlap_accepted: true to build it anyway"
                        % (overlap, why, risk, SUGGESTED_POD_CIDR))


def check_inventory(nodes, settings, groups, cluster="defer"):
    """Return (problems, warnings): problems stop the run, warnings are shown.

    ``cluster``: whether the control plane already has a cluster, one of CLUSTER_STATES; it decides whether the
    tolerated pod network overlap is refused (a new cluster) or a warning (an existing one)."""
    if cluster not in CLUSTER_STATES:
        raise ValueError("cluster must be one of %s, got %r" % (", ".join(CLUSTER_STATES), cluster))
    problems = []
    warnings = []
    control = list(groups.get("control_plane") or [])
    workers = list(groups.get("workers") or [])
    if len(control) != 1:
        problems.append("group control_plane must hold exactly one node; it holds %d (%s)"
                        % (len(control), ", ".join(control) or "none"))
    if not workers:
        problems.append("group workers holds no node")
    both = sorted(set(control) & set(workers))
    if both:
        problems.append("%s is in both control_plane and workers" % ", ".join(both))

    lan = _network(settings.get("spark_lan_subnet"), "spark_lan_subnet", problems)
    ports = settings.get("fabric_ports") or []
    if not isinstance(ports, list):
        ports = []  # reported by check_cluster, which names the host
    if not ports:
        problems.append("fabric_ports is empty: list each fabric half with its subnet and candidates")
    fabric_nets = []
    for index, port in enumerate(ports):
        port = port if isinstance(port, dict) else {}
        net = _network(port.get("subnet"), "fabric_ports[%d].subnet" % index, problems)
        fabric_nets.append(net)
        if not port.get("candidates"):
            problems.append("fabric_ports[%d].candidates is empty" % index)

    named = [("spark_lan_subnet", lan)] + [("fabric_ports[%d].subnet" % i, n) for i, n in enumerate(fabric_nets)]
    for extra in ("kubernetes_pod_cidr", "kubernetes_service_cidr"):
        named.append((extra, _network(settings.get(extra), extra, problems)))
    for i, (name_a, net_a) in enumerate(named):
        for name_b, net_b in named[i + 1:]:
            if net_a is not None and net_b is not None and net_a.overlaps(net_b):
                if (name_a, name_b) in TOLERATED_OVERLAPS:
                    _pod_overlap("%s (%s) overlaps %s (%s)" % (name_b, net_b, name_a, net_a), settings, cluster,
                                 problems, warnings)
                else:
                    problems.append("%s (%s) overlaps %s (%s)" % (name_a, net_a, name_b, net_b))

    seen = {}

    def claim(ip, owner):
        if ip is None:
            return
        if str(ip) in seen:
            problems.append("%s is used twice: by %s and by %s" % (ip, seen[str(ip)], owner))
        else:
            seen[str(ip)] = owner

    for name in sorted(nodes):
        node = nodes[name]
        lan_ip = _address(node.get("spark_lan_ip"), "%s: spark_lan_ip" % name, problems)
        if lan_ip is not None and lan is not None and lan_ip not in lan:
            problems.append("%s: spark_lan_ip %s is outside spark_lan_subnet %s" % (name, lan_ip, lan))
        claim(lan_ip, "%s spark_lan_ip" % name)
        addresses = node.get("spark_fabric_addresses") or []
        if not isinstance(addresses, list):
            problems.append("%s: spark_fabric_addresses must be a list of addresses with prefix, got %r" % (name, addresses))
            addresses = []
        if len(addresses) != len(ports):
            problems.append("%s: spark_fabric_addresses has %d entries but fabric_ports has %d; give one address per fabric half"
                            % (name, len(addresses), len(ports)))
        for index, value in enumerate(addresses):
            label = "%s: spark_fabric_addresses[%d]" % (name, index)
            iface = _interface(value, label, problems)
            if iface is None:
                continue
            net = fabric_nets[index] if index < len(fabric_nets) else None
            if net is not None and iface.network != net:
                problems.append("%s %s is not in its half's subnet %s" % (label, value, net))
            claim(iface.ip, label)
        mac = node.get("spark_wol_mac")
        if mac is not None and not MAC_RE.fullmatch(str(mac)):
            problems.append("%s: spark_wol_mac '%s' is not a MAC address like 4c:bb:47:2e:29:59" % (name, mac))

    api = _address(settings.get("kubernetes_api_address"), "kubernetes_api_address", problems)
    if api is not None and len(control) == 1 and control[0] in nodes:
        first = (nodes[control[0]].get("spark_fabric_addresses") or [None])[0]
        try:
            first_ip = ipaddress.ip_interface(str(first)).ip if first else None
        except ValueError:
            first_ip = None
        if first_ip is not None and api != first_ip:
            problems.append("kubernetes_api_address %s is not the control plane's first fabric address (%s on %s)"
                            % (api, first_ip, control[0]))

    for index, entry in enumerate(settings.get("metallb_address_pool") or []):
        label = "metallb_address_pool[%d]" % index
        bounds = _pool_range(entry, label, problems)
        if bounds is None:
            continue
        lo, hi = bounds
        if lan is not None and (lo not in lan or hi not in lan):
            problems.append("%s '%s' is not inside spark_lan_subnet %s" % (label, entry, lan))
        for ip, owner in sorted(seen.items()):
            if int(lo) <= int(ipaddress.ip_address(ip)) <= int(hi):
                problems.append("%s '%s' contains %s, already used by %s" % (label, entry, ip, owner))
    return problems, warnings


def _bound_problem(name, value, low, high, unit, typed):
    """The message when ``value`` is not a number within ``low..high``; None when it is.

    ``typed``: the argument spec already checked the type, so a value it could not convert is not reported twice."""
    number = _number(value)
    if isinstance(value, bool):
        return "%s: %r is a boolean, not a number" % (name, value)
    if number is None:
        return None if typed else "%s: %r is not a number" % (name, value)
    if high is not None and not low <= number <= high:
        return "%s: %r is outside %s..%s (%s)" % (name, value, low, high, unit)
    if number < low:
        return "%s: %r is below the lowest allowed value, %s (%s)" % (name, value, low, unit)
    return None


def _interface_problems(ports):
    problems = []
    if not isinstance(ports, list):
        return ["fabric_ports: must be a list of fabric halves (subnet and candidates), got %r" % (ports,)]
    for index, port in enumerate(ports):
        if not isinstance(port, dict):
            problems.append("fabric_ports[%d]: must be a mapping with subnet and candidates, got %r" % (index, port))
            continue
        candidates = port.get("candidates")
        if candidates is None:
            continue
        if not isinstance(candidates, list):
            problems.append("fabric_ports[%d].candidates: must be a list of interface names, got %r" % (index, candidates))
            continue
        for position, name in enumerate(candidates):
            problem = interface_name_problem(name)
            if problem:
                problems.append("fabric_ports[%d].candidates[%d]: %s" % (index, position, problem))
    return problems


def _nccl_problems(values):
    """NCCL sizes up front: parsed with nccl.parse_size, the memory-safe cap of nccl.SAFE_MAX_BYTES."""
    problems = []
    sizes = {}
    for name in ("nccl_min_bytes", "nccl_max_bytes"):
        if values.get(name) is None:
            continue
        try:
            sizes[name] = parse_size(values[name], name)
        except NcclInputError as exc:
            problems.append(str(exc))
    low, high = sizes.get("nccl_min_bytes"), sizes.get("nccl_max_bytes")
    if low is not None and high is not None and low > high:
        problems.append("nccl_min_bytes (%s) is larger than nccl_max_bytes (%s)" % (format_size(low), format_size(high)))
    if high is not None and high > SAFE_MAX_BYTES and not _bool(values.get("nccl_allow_large_sizes")):
        problems.append("nccl_max_bytes: %s (%s) is above the memory-safe cap of %s: on a DGX Spark the GPU shares the "
                        "node's unified memory and the 16 GiB nccl-tests run freezes a node "
                        "(NVIDIA/dgx-spark-playbooks#102); set nccl_allow_large_sizes: true to run it anyway"
                        % (values["nccl_max_bytes"], format_size(high), format_size(SAFE_MAX_BYTES)))
    return problems


def _host_problems(values, raw, typed):
    """Problems with one host's own values (the message names the variable; the caller adds the host)."""
    problems = []
    for name in sorted(BOUNDS):
        if values.get(name) is not None:
            low, high, unit = BOUNDS[name]
            problem = _bound_problem(name, values[name], low, high, unit, name in typed)
            if problem:
                problems.append(problem)
    if values.get("fabric_ports") is not None:
        problems.extend(_interface_problems(values["fabric_ports"]))
    # The raw value: an argument spec of type str turns the float 1.3 (an unquoted 1.30) into "1.3".
    if "kubernetes_version" in raw:
        problem = parse_kubernetes_version(raw["kubernetes_version"])[1]
        if problem:
            problems.append(problem)
    problems.extend(_nccl_problems(values))
    if values.get("worker_token_ttl") is not None:
        problem = duration_problem(values["worker_token_ttl"])
        if problem:
            problems.append("worker_token_ttl: %s" % problem)
    problems.extend(_addon_problems(values, raw))
    return problems


def _enabled(values, name):
    return name in values and _bool(values.get(name))


def _addon_problems(values, raw):
    """The add-on roles' values (each checked when its role is part of the run, i.e. its variables are present)."""
    problems = []
    for name in CHART_VERSION_KEYS:
        if name in values and not _is_template(values[name]):
            problem = version_problem(name, values[name])
            if problem:
                problems.append(problem)
    gpu = values.get("gpu_operator_chart_version")
    if gpu is not None and not version_problem("gpu_operator_chart_version", gpu):
        found = version_tuple(gpu)
        if found is not None and found < GPU_OPERATOR_MIN_VERSION:
            problems.append("gpu_operator_chart_version %s is below v%s: earlier GPU Operators do not support the "
                            "DGX Spark's GB10 (their device plugin fails with \"error getting device memory: Not "
                            "Supported\", NVIDIA/gpu-operator#1794); pin v25.10.0 or newer"
                            % (gpu, ".".join(str(part) for part in GPU_OPERATOR_MIN_VERSION)))
    interfaces = values.get("metallb_l2_interfaces")
    lan = values.get("spark_lan_interface")
    if _enabled(values, "metallb_enabled") and isinstance(interfaces, list) and not _is_template(lan):
        others = [str(name) for name in interfaces if str(name) != str(lan)]
        if others:
            problems.append("metallb_l2_interfaces: %s %s not the LAN interface (spark_lan_interface: %s); service "
                            "addresses must never be announced on the fabric or another network"
                            % (", ".join(others), "is" if len(others) == 1 else "are", lan))
        if not interfaces:
            problems.append("metallb_l2_interfaces is empty: MetalLB would announce on every interface, the fabric "
                            "included; list the LAN interface (%s)" % lan)
    if _enabled(values, "metallb_enabled") and "metallb_address_pool" in values and not values.get("metallb_address_pool"):
        problems.append("metallb_address_pool is empty: give the LAN range LoadBalancer addresses come from (for "
                        "example 192.168.86.200-192.168.86.220), or set metallb_enabled: false")
    if _enabled(values, "storage_nfs_enabled"):
        exports = values.get("storage_nfs_exports")
        for index, export in enumerate(exports if isinstance(exports, list) else []):
            path = export.get("path") if isinstance(export, dict) else None
            if not isinstance(path, str) or not path.startswith("/") or _is_template(path):
                problems.append("storage_nfs_exports[%d].path: %r is not an absolute path" % (index, path))
        share = values.get("storage_nfs_share")
        if share is not None and not str(share).startswith("/"):
            problems.append("storage_nfs_share: %r is not an absolute path" % (share,))
    default = values.get("storage_default_class")
    if default == "nfs-csi" and "storage_nfs_enabled" in values and not _bool(values.get("storage_nfs_enabled")):
        problems.append("storage_default_class is nfs-csi but storage_nfs_enabled is false: enable NFS or choose "
                        "longhorn or none")
    if default == "longhorn" and "storage_longhorn_enabled" in values and not _bool(values.get("storage_longhorn_enabled")):
        problems.append("storage_default_class is longhorn but storage_longhorn_enabled is false: enable Longhorn or "
                        "choose nfs-csi or none")
    series = values.get("cni_supported_kubernetes_series")
    if _enabled(values, "cni_enabled") and isinstance(series, list) and "kubernetes_version" in raw:
        version = parse_kubernetes_version(raw["kubernetes_version"])[0]
        wanted = ".".join(version.split(".")[:2]) if version else None
        if wanted and wanted not in [str(item) for item in series]:
            problems.append("kubernetes_version %s: the pinned Calico (cni_chart_version %s) supports Kubernetes %s "
                            "only; pin a Calico release that supports %s and list it in cni_supported_kubernetes_series"
                            % (raw["kubernetes_version"], values.get("cni_chart_version"), ", ".join(map(str, series)),
                               wanted))
    return problems


def _canonical(name, value):
    """The value two nodes must share: numbers and versions compared as such, fabric_ports by subnets only."""
    if name == "fabric_ports" and isinstance(value, list):
        return [str(port.get("subnet")) if isinstance(port, dict) else repr(port) for port in value]
    if name == "kubernetes_version":
        return parse_kubernetes_version(value)[0] or repr(value)
    if name == "kubernetes_pod_cidr_overlap_accepted":
        return _bool(value)
    number = _number(value)
    if number is not None:
        return number
    return value


def _show(name, value):
    if name == "fabric_ports":
        return "subnets %s" % ", ".join(_canonical(name, value)) if isinstance(value, list) else repr(value)
    if isinstance(value, list):
        return "[%s]" % ", ".join(str(item) for item in value)
    return "(not set)" if value is None else str(value)


def _by_host(found, hosts):
    """One line per message: without a host when every host has it, else prefixed with the hosts that have it."""
    order = []
    owners = {}
    for host, message in found:
        if message not in owners:
            order.append(message)
            owners[message] = []
        if host not in owners[message]:
            owners[message].append(host)
    lines = []
    for message in order:
        if len(hosts) > 1 and sorted(owners[message]) == sorted(hosts):
            lines.append(message)
        else:
            lines.append("%s: %s" % (", ".join(owners[message]), message))
    return lines


def role_params(options, defaults, values):
    """``(spec, params)`` to validate one role's argument spec (``options``) for one host.

    A value comes from the host (inventory, extra vars) or else from the role's ``defaults``. A default that is a
    template (derived from other variables when the role runs) is left out: there is nothing to check before then.
    An option with neither stays in ``spec`` without a value, so a required one is reported missing."""
    spec = {}
    params = {}
    for name, option in (options or {}).items():
        if name in values:
            value = values[name]
        elif name in (defaults or {}):
            value = defaults[name]
        else:
            spec[name] = option
            continue
        if _is_template(value):
            continue
        spec[name] = option
        params[name] = value
    return spec, params


def check_cluster(hosts, groups, validated=None, cluster="defer"):
    """Return (problems, warnings) for the whole inventory, host by host.

    ``hosts``: name -> that host's raw values (any of HOST_KEYS it defines). ``validated``: name ->
    ``{"values": {...}, "errors": [...], "checked": [...]}``, the outcome of the argument specs for that host
    (values converted to their declared types, the spec's messages, the names it checked); None when no spec
    was checked. ``cluster``: one of CLUSTER_STATES (see check_inventory)."""
    validated = validated or {}
    members = list(groups.get("spark_cluster") or sorted(hosts))
    problems = []
    for name in members:
        problem = node_name_problem(name)
        if problem:
            problems.append("inventory host %s" % problem)

    values = {}
    found = []
    for name in members:
        raw = dict(hosts.get(name) or {})
        outcome = validated.get(name) or {}
        merged = dict(raw)
        merged.update(outcome.get("values") or {})
        values[name] = merged
        found.extend((name, message) for message in outcome.get("errors") or [])
        found.extend((name, message) for message in _host_problems(merged, raw, set(outcome.get("checked") or ())))
    problems.extend(_by_host(found, members))

    for key in AGREE_KEYS:
        seen = [(name, values[name].get(key)) for name in members]
        if len(set(repr(_canonical(key, value)) for name, value in seen)) > 1:
            problems.append("%s must be the same on every node but differs: %s; set it once in group_vars, not per host"
                            % (key, ", ".join("%s %s" % (name, _show(key, value)) for name, value in seen)))

    control = [name for name in groups.get("control_plane") or [] if name in values]
    reference = values[control[0]] if control else (values[members[0]] if members else {})
    settings = {}
    for key in SETTING_KEYS:
        value = reference.get(key)
        settings[key] = _number(value) if key in BOUNDS and _number(value) is not None else value
    nodes = dict((name, dict((key, values[name].get(key)) for key in NODE_KEYS)) for name in members)
    more, warnings = check_inventory(nodes, settings, groups, cluster)
    replicas = _number(reference.get("storage_longhorn_replica_count"))
    if (replicas is not None and _enabled(reference, "storage_enabled") and _bool(reference.get("storage_longhorn_enabled", True))
            and replicas > len(members)):
        more.append("storage_longhorn_replica_count: %s replicas on %d node(s): Longhorn places each replica of a volume "
                    "on a different node, so volumes could never be healthy; use at most %d"
                    % (reference.get("storage_longhorn_replica_count"), len(members), len(members)))
    if "apps_catalogue" in reference:
        more.extend(_apps_problems(reference, values, members))
    # The Dashboard's settings when its role is part of the run (its variables are present).
    if "dashboard_state" in reference:
        more.extend(dashboard_settings_problems(reference))
    return problems + more, warnings


def _apps_problems(reference, values, members):
    """The apps catalogue and the run's choices (checked when the apps role is part of the run: its variables are
    present), with each node's GPUs from its own spark_gpu_count."""
    nodes = {}
    for name in members:
        count = _number(values[name].get("spark_gpu_count"))
        nodes[name] = int(count) if count is not None else 0
    names, state = run_choices(reference.get("apps_selected"), reference.get("apps"),
                               reference.get("apps_selected_state"), reference.get("app_state"))
    return check_catalogue(reference.get("apps_catalogue"), nodes, reference.get("metallb_address_pool"),
                           overrides=reference.get("apps_overrides"), presets=reference.get("apps_vllm_presets"),
                           selected=names, run_state=state, purge=_bool(reference.get("apps_purge")),
                           purge_confirm=reference.get("apps_purge_confirm"),
                           namespace=reference.get("apps_namespace") or "apps",
                           extra_apps=["dashboard"] if _bool(reference.get("dashboard_enabled", True)) else [])
