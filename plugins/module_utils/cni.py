# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the ``cni_cleanup`` module (also used by ``kubeadm_node``'s forced reset).

Stale CNI state is what breaks pod networking after an unclean stop: ``cni-*`` network namespace
files whose namespace is gone ("Peer netns reference is invalid", EIO/"Invalid argument" when opened),
IPAM/result entries under /var/lib/cni for sandboxes that no longer exist, and Calico veths left
behind by those namespaces.

How "live" is decided (documented in docs/cni_cleanup.md):

* a ``cni-*`` netns file is live when it is a mounted network namespace (nsfs, same device as
  /proc/self/ns/net) whose inode is the network namespace of some process (/proc/<pid>/ns/net) or
  is held open by some process (/proc/<pid>/fd/* -> ``net:[<inode>]``).  A running pod sandbox
  always has its pause process in its namespace, so this never touches a running sandbox's netns;
  it needs no CRI call and works while containerd is down.  If the /proc scan was incomplete
  (permission denied), nothing that still is a valid namespace is removed;
* files younger than ``min_age`` seconds are kept (a sandbox being created has a netns before its
  pause process starts);
* a /var/lib/cni entry is live when its container id is a sandbox that ``crictl pods`` lists (ready
  or not); when crictl cannot answer, every entry is kept.

Pure: parsers, the planner (facts in, actions out), the module's result and diff, and argv builders.
No Ansible imports and no I/O: cni_io.py walks /proc and the file system, runs the commands and removes
what the plan says; the tests drive this file with plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import json
import posixpath
import re

NETNS_PREFIX = "cni-"
DEFAULT_NETNS_DIRS = ["/run/netns", "/var/run/netns"]
DEFAULT_STATE_DIRS = ["/var/lib/cni/networks", "/var/lib/cni/results"]
DEFAULT_INTERFACES = ["cali*", "vxlan.calico", "tunl0"]
DEFAULT_RESTART = ["containerd", "kubelet"]
# host-local IPAM bookkeeping files: never "stale", they carry no container id
IPAM_BOOKKEEPING = re.compile(r"^(lock|last_reserved_ip\.\d+)$")
CONTAINER_ID_RE = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
NET_FD_RE = re.compile(r"^net:\[(\d+)\]$")  # /proc/<pid>/fd/<n> -> net:[<inode>]


# ---------------------------------------------------------------------------------------------
# parsers (pure)
# ---------------------------------------------------------------------------------------------

def parse_ip_netns(text):
    """``ip netns`` / ``ip netns list`` text -> ``{netns: [{name, id}], errors: [lines]}``.

    Entries without ``(id: N)`` get id None; ``Error: ...`` lines (e.g. "Peer netns reference is
    invalid.", printed for namespaces that are gone) are collected, not parsed as names.
    """
    netns, errors = [], []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("Error:"):
            errors.append(line)
            continue
        m = re.match(r"^(\S+)(?:\s+\(id:\s*(\d+)\))?\s*$", line)
        if m:
            netns.append({"name": m.group(1), "id": int(m.group(2)) if m.group(2) else None})
    return {"netns": netns, "errors": errors}


def parse_crictl_pods_json(text):
    """``crictl pods -o json`` -> [{id, state, name, namespace}] (every listed sandbox, ready or not)."""
    data = json.loads(text or "{}")
    pods = []
    for item in data.get("items") or []:
        meta = item.get("metadata") or {}
        pods.append({"id": item.get("id"), "state": item.get("state"), "name": meta.get("name"),
                     "namespace": meta.get("namespace")})
    return pods


def parse_ip_link_json(text):
    """``ip -j link show`` -> [{ifname, link_netnsid, kind}] (``link_netnsid`` None when absent)."""
    links = []
    for item in json.loads(text or "[]"):
        links.append({"ifname": item.get("ifname"), "link_netnsid": item.get("link_netnsid"),
                      "kind": ((item.get("linkinfo") or {}).get("info_kind"))})
    return links


def parse_mountinfo(text):
    """/proc/self/mountinfo -> list of mount points (octal escapes such as \\040 decoded)."""
    points = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 5:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def container_id_from_entry(name, content=None):
    """Container (sandbox) id of a /var/lib/cni entry: 64 hex digits in its name (results files are
    ``<network>-<id>-<ifname>``), else the first line of host-local IPAM files, else ``containerId``
    in JSON result files.  None when there is none (kept: nothing proves it stale)."""
    m = CONTAINER_ID_RE.search(name or "")
    if m:
        return m.group(1)
    if not content:
        return None
    stripped = content.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped).get("containerId")
        except (ValueError, AttributeError):
            value = None
        if value:
            return value
    first = stripped.splitlines()[0].strip() if stripped else ""
    m = CONTAINER_ID_RE.match(first)
    return m.group(1) if m else None


def netns_ids(rc, text):
    """``{name: nsid}`` from ``ip netns list`` (rc and output); empty when the command failed."""
    if rc != 0:
        return {}
    return dict((n["name"], n["id"]) for n in parse_ip_netns(text)["netns"])


def links(rc, text):
    """Links from ``ip -j link show`` (rc and output); empty when the command failed or printed no JSON."""
    try:
        return parse_ip_link_json(text) if rc == 0 else []
    except ValueError:
        return []


def sandboxes(rc, out, err):
    """(ids of every sandbox ``crictl pods -o json`` lists, None) or (None, why they are unknown)."""
    try:
        if rc == 0:
            return [pod["id"] for pod in parse_crictl_pods_json(out) if pod["id"]], None
        return None, "crictl pods rc %s: %s" % (rc, (err or out or "").strip()[:200])
    except (ValueError, AttributeError):
        return None, "crictl pods printed no JSON"


# ---------------------------------------------------------------------------------------------
# planner (pure)
# ---------------------------------------------------------------------------------------------

def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name or "", p) for p in patterns or [])


def plan_cleanup(facts, only_stale=True, interfaces=None, min_age=60):
    """Decide what goes.  Pure: ``facts`` holds what was observed.

    ``facts``:
      ``netns``: [{name, path, error, nsfs, inode, age}] (``error`` set when stat/open failed)
      ``live``: {inode: [pids]} of network namespaces processes are in or hold open
      ``live_complete``: False when /proc could not be fully read (permission denied); ``unreadable``: those pids
      ``netns_ids``: {name: nsid} from ``ip netns list``
      ``sandboxes``: [ids] from crictl (any state) or None when unknown; ``sandboxes_error``: why
      ``state_entries``: [{path, name, container_id}]
      ``links``: [{ifname, link_netnsid}]

    Returns ``{remove: {netns, paths, links}, kept: [{kind, name, reason}]}`` with every observed item in
    exactly one of the two.
    """
    interfaces = DEFAULT_INTERFACES if interfaces is None else interfaces
    remove = {"netns": [], "paths": [], "links": []}
    kept = []
    live = facts.get("live") or {}
    live_complete = facts.get("live_complete", True)
    removed_names = set()

    def keep(kind, name, reason):
        kept.append({"kind": kind, "name": name, "reason": reason})

    for ns in facts.get("netns") or []:
        path = ns["path"]
        if not only_stale:
            remove["netns"].append(path)
            removed_names.add(ns["name"])
            continue
        if ns.get("error"):
            remove["netns"].append(path)
            removed_names.add(ns["name"])
            continue
        age = ns.get("age")
        young = age is not None and age < min_age
        if not ns.get("nsfs"):
            if young:
                keep("netns", path, "not a mounted namespace yet, but only %ds old (min_age=%d)" % (age, min_age))
            else:
                remove["netns"].append(path)
                removed_names.add(ns["name"])
            continue
        pids = live.get(ns.get("inode"))
        if pids:
            keep("netns", path, "in use by running process(es) %s" % ", ".join(str(p) for p in sorted(pids)[:5]))
        elif not live_complete:
            keep("netns", path, "the /proc scan was incomplete (permission denied for pid %s); cannot prove it "
                 "unused" % ", ".join(str(p) for p in (facts.get("unreadable") or ["?"])[:5]))
        elif young:
            keep("netns", path, "unused but only %ds old (min_age=%d): a sandbox may be starting" % (age, min_age))
        else:
            remove["netns"].append(path)
            removed_names.add(ns["name"])

    sandboxes = facts.get("sandboxes")
    live_ids = set(sandboxes or [])
    for entry in facts.get("state_entries") or []:
        path, cid = entry["path"], entry.get("container_id")
        if not only_stale:
            remove["paths"].append(path)
        elif IPAM_BOOKKEEPING.match(entry.get("name") or posixpath.basename(path)):
            keep("path", path, "IPAM bookkeeping file")
        elif sandboxes is None:
            keep("path", path, "live sandboxes unknown (%s)" % (facts.get("sandboxes_error") or "crictl failed"))
        elif not cid:
            keep("path", path, "no container id found in it")
        elif cid in live_ids:
            keep("path", path, "sandbox %s exists" % cid[:13])
        else:
            remove["paths"].append(path)

    ids = facts.get("netns_ids") or {}
    stale_ids = set(ids[n] for n in removed_names if ids.get(n) is not None)
    for link in facts.get("links") or []:
        name = link.get("ifname")
        if not _matches(name, interfaces):
            continue
        nsid = link.get("link_netnsid")
        if not only_stale:
            remove["links"].append(name)
        elif nsid is None:
            keep("link", name, "host-level device (no peer namespace); removed only with only_stale=false")
        elif nsid in stale_ids:
            remove["links"].append(name)
        else:
            keep("link", name, "its peer namespace (nsid %s) is live or not a stale cni netns" % nsid)

    return {"remove": remove, "kept": kept}


def plan_is_empty(plan):
    return not any(plan["remove"].values())


def plan_diff(facts, plan):
    """The module's diff: the netns files, state entries and matching links before and after the plan."""
    before = {"netns": sorted(n["path"] for n in facts["netns"]),
              "paths": sorted(e["path"] for e in facts["state_entries"]),
              "links": sorted(k["name"] for k in plan["kept"] if k["kind"] == "link") + plan["remove"]["links"]}
    after = dict((key, [x for x in before[key] if x not in plan["remove"][key]]) for key in before)
    return dict(before=before, after=after)


def planned_result(plan, restart_services):
    """The result before anything is removed (also the check-mode result): what would go, what stays, and the
    services that would be restarted."""
    would_change = not plan_is_empty(plan)
    return dict(changed=would_change, removed=plan["remove"], kept=plan["kept"],
                restarted=list(restart_services) if would_change else [])


def removal_failure(errors):
    """The failure message when some removals failed, or None."""
    if not errors:
        return None
    return "could not remove all stale CNI state: %s" % "; ".join(errors)


# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

def crictl_pods_argv(crictl, cri_socket):
    return [crictl, "--runtime-endpoint", cri_socket, "pods", "-o", "json"]


def ip_netns_list_argv(ip):
    return [ip, "netns", "list"]


def ip_link_show_argv(ip):
    return [ip, "-j", "link", "show"]


def ip_link_delete_argv(ip, name):
    return [ip, "link", "delete", name]


def umount_lazy_argv(umount, path):
    return [umount, "-l", path]


def systemctl_restart_argv(systemctl, unit):
    return [systemctl, "restart", unit]
