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

Sections: pure parsers, the pure planner (facts in, actions out), argv builders, and host helpers
that read the file system and /proc (no Ansible imports; the modules pass a CommandRunner).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fnmatch
import json
import os
import re

NETNS_PREFIX = "cni-"
DEFAULT_NETNS_DIRS = ["/run/netns", "/var/run/netns"]
DEFAULT_STATE_DIRS = ["/var/lib/cni/networks", "/var/lib/cni/results"]
DEFAULT_INTERFACES = ["cali*", "vxlan.calico", "tunl0"]
DEFAULT_RESTART = ["containerd", "kubelet"]
# host-local IPAM bookkeeping files: never "stale", they carry no container id
IPAM_BOOKKEEPING = re.compile(r"^(lock|last_reserved_ip\.\d+)$")
CONTAINER_ID_RE = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
_NET_FD_RE = re.compile(r"^net:\[(\d+)\]$")


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
        elif IPAM_BOOKKEEPING.match(entry.get("name") or os.path.basename(path)):
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


# ---------------------------------------------------------------------------------------------
# host helpers (I/O on the node; no Ansible imports)
# ---------------------------------------------------------------------------------------------

def _errname(exc):
    return "%s: %s" % (errno.errorcode.get(exc.errno, exc.errno), exc.strerror)


def nsfs_device(proc="/proc"):
    try:
        return os.stat(os.path.join(proc, "self", "ns", "net")).st_dev
    except OSError:
        return None


def unique_dirs(dirs):
    """Existing directories, each once (/var/run/netns is usually /run/netns)."""
    seen, result = set(), []
    for d in dirs or []:
        real = os.path.realpath(d)
        if real in seen or not os.path.isdir(d):
            continue
        seen.add(real)
        result.append(d)
    return result


def observe_netns(dirs, now, nsfs_dev, prefix=NETNS_PREFIX):
    """Stat and open every ``<prefix>*`` file in ``dirs``; never setns, never writes."""
    found = []
    for d in unique_dirs(dirs):
        for name in sorted(os.listdir(d)):
            if not name.startswith(prefix):
                continue
            path = os.path.join(d, name)
            entry = {"name": name, "path": path, "error": None, "nsfs": None, "inode": None, "age": None}
            try:
                st = os.stat(path)
                fd = os.open(path, os.O_RDONLY)
                os.close(fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue  # vanished meanwhile
                entry["error"] = _errname(exc)
            else:
                entry["inode"] = st.st_ino
                entry["nsfs"] = nsfs_dev is not None and st.st_dev == nsfs_dev
                entry["age"] = max(0, now - st.st_mtime)
            found.append(entry)
    return found


def observe_live_netns(proc="/proc", nsfs_dev=None):
    """({inode: [pids]}, unreadable) for every network namespace a process is in or holds open.

    ``unreadable`` lists the pids whose namespace or descriptors could not be read (permission denied);
    when it is not empty the scan is incomplete and the planner keeps every valid namespace."""
    live, unreadable = {}, []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return live, ["<%s unreadable>" % proc]
    for pid in pids:
        try:
            st = os.stat(os.path.join(proc, pid, "ns", "net"))
            if nsfs_dev is None or st.st_dev == nsfs_dev:
                live.setdefault(st.st_ino, []).append(int(pid))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                unreadable.append(int(pid))
            continue
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                unreadable.append(int(pid))
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            m = _NET_FD_RE.match(target)
            if m:
                holders = live.setdefault(int(m.group(1)), [])
                if int(pid) not in holders:
                    holders.append(int(pid))
    return live, unreadable


def observe_state_entries(dirs):
    """Files in the state dirs (depth 2: /var/lib/cni/networks/<net>/<ip>, /var/lib/cni/results/<f>)."""
    entries = []
    for d in unique_dirs(dirs):
        for root, subdirs, files in os.walk(d):
            depth = root[len(d):].count(os.sep)
            if depth >= 1:
                subdirs[:] = []
            for name in sorted(files):
                path = os.path.join(root, name)
                content = None
                if not CONTAINER_ID_RE.search(name):
                    try:
                        with open(path, "r") as f:
                            content = f.read(8192)
                    except (IOError, OSError, UnicodeDecodeError):
                        content = None
                entries.append({"path": path, "name": name, "container_id": container_id_from_entry(name, content)})
    return entries


def read_mountpoints(mountinfo="/proc/self/mountinfo"):
    try:
        with open(mountinfo, "r") as f:
            return parse_mountinfo(f.read())
    except (IOError, OSError):
        return []


def remove_netns_file(path, runner, umount, mountpoints):
    """Detach the namespace mount (if any) and delete the file, as ``ip netns delete`` does.

    Returns None or an error string."""
    if path in mountpoints or os.path.realpath(path) in mountpoints:
        rc, out, err = runner.run(umount_lazy_argv(umount, path), check=False)
        if rc != 0:
            return "umount -l failed (rc %s): %s" % (rc, (err or out).strip())
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return _errname(exc)
    return None


def remove_state_path(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return _errname(exc)
    return None
