# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O layer of ``cni_cleanup`` (also used by ``kubeadm_node``'s forced reset).

Walks /proc and the file system, runs the read-only commands (``ip``, ``crictl``) through the collection's
CommandRunner to gather the facts the pure planner in cni.py takes, and removes what a plan says.  Nothing here
decides what is stale.  Never enters a namespace (no setns) and never writes while observing.  No Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni

CRICTL_DIRS = ["/usr/bin", "/usr/local/bin"]
UMOUNT_DIRS = ["/usr/bin", "/bin"]
CRICTL_TIMEOUT = 30
RESTART_TIMEOUT = 180


# ---------------------------------------------------------------------------------------------
# observing (reads only)
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


def observe_netns(dirs, now, nsfs_dev, prefix=cni.NETNS_PREFIX):
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
            m = cni.NET_FD_RE.match(target)
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
                if not cni.CONTAINER_ID_RE.search(name):
                    try:
                        with open(path, "r") as f:
                            content = f.read(8192)
                    except (IOError, OSError, UnicodeDecodeError):
                        content = None
                entries.append({"path": path, "name": name, "container_id": cni.container_id_from_entry(name, content)})
    return entries


def read_mountpoints(mountinfo="/proc/self/mountinfo"):
    try:
        with open(mountinfo, "r") as f:
            return cni.parse_mountinfo(f.read())
    except (IOError, OSError):
        return []


def gather_facts(runner, netns_dirs, state_dirs, cri_socket):
    """The facts ``cni.plan_cleanup`` takes: reads and read-only commands only."""
    nsfs_dev = nsfs_device()
    facts = {"netns": observe_netns(netns_dirs, time.time(), nsfs_dev)}
    facts["live"], facts["unreadable"] = observe_live_netns(nsfs_dev=nsfs_dev)
    facts["live_complete"] = not facts["unreadable"]
    ip = runner.binary("ip")
    rc, out, dummy = runner.run(cni.ip_netns_list_argv(ip), check=False)
    facts["netns_ids"] = cni.netns_ids(rc, out)
    rc, out, dummy = runner.run(cni.ip_link_show_argv(ip), check=False)
    facts["links"] = cni.links(rc, out)
    crictl = runner.binary("crictl", required=False, extra_paths=CRICTL_DIRS)
    facts["sandboxes"], facts["sandboxes_error"] = None, "crictl not found"
    if crictl:
        rc, out, err = runner.run(cni.crictl_pods_argv(crictl, cri_socket), check=False, timeout=CRICTL_TIMEOUT)
        facts["sandboxes"], facts["sandboxes_error"] = cni.sandboxes(rc, out, err)
    facts["state_entries"] = observe_state_entries(state_dirs)
    return facts


# ---------------------------------------------------------------------------------------------
# changing
# ---------------------------------------------------------------------------------------------

def remove_netns_file(path, runner, umount, mountpoints):
    """Detach the namespace mount (if any) and delete the file, as ``ip netns delete`` does.

    Returns None or an error string."""
    if path in mountpoints or os.path.realpath(path) in mountpoints:
        rc, out, err = runner.run(cni.umount_lazy_argv(umount, path), check=False)
        if rc != 0:
            return "umount -l failed (rc %s): %s" % (rc, (err or out).strip())
    return _remove(path)


def remove_state_path(path):
    """Delete a state entry (an empty directory too); returns None or an error string."""
    return _remove(path, directories=True)


def _remove(path, directories=False):
    """Delete ``path`` (already gone is fine); returns None or an error string."""
    try:
        if directories and os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return _errname(exc)
    return None


def remove_planned(runner, plan, warn):
    """Remove what ``plan`` says: links, then netns files, then state entries.  Returns (removed, errors).

    A link that cannot be deleted is a warning (``warn``), not an error: a veth goes with its namespace, and
    tunl0 cannot be deleted while the ipip module is loaded."""
    removed = {"netns": [], "paths": [], "links": []}
    errors = []
    ip = runner.binary("ip")
    for name in plan["remove"]["links"]:
        rc, out, err = runner.run(cni.ip_link_delete_argv(ip, name), check=False)
        if rc == 0:
            removed["links"].append(name)
        else:
            warn("ip link delete %s failed (rc %s): %s" % (name, rc, (err or out).strip()))
    umount = runner.binary("umount", extra_paths=UMOUNT_DIRS)
    mountpoints = set(read_mountpoints())
    for path in plan["remove"]["netns"]:
        error = remove_netns_file(path, runner, umount, mountpoints)
        if error:
            errors.append("%s: %s" % (path, error))
        else:
            removed["netns"].append(path)
    for path in plan["remove"]["paths"]:
        error = remove_state_path(path)
        if error:
            errors.append("%s: %s" % (path, error))
        else:
            removed["paths"].append(path)
    return removed, errors


def restart_services(runner, units):
    """Restart ``units`` in order (a failure ends the module); returns the units restarted. A restart that hangs in
    its stop (the process ignores its stop signal, as a kubelet stuck in the kernel does, and systemd waits) is ended
    as the worker's forced reset ends one: the unit's processes are killed with SIGKILL, so the pending restart job
    completes, and the unit is started."""
    systemctl = runner.binary("systemctl")
    for unit in units:
        argv = cni.systemctl_restart_argv(systemctl, unit)
        rc, out, err = runner.run(argv, check=False, timeout=RESTART_TIMEOUT)
        if rc == 124:
            runner.run([systemctl, "kill", "--signal=SIGKILL", unit], timeout=30,
                       msg="killing %s, whose restart hung in its stop, failed" % unit)
            argv = [systemctl, "start", unit]
            rc, out, err = runner.run(argv, check=False, timeout=RESTART_TIMEOUT)
        if rc != 0:
            runner.fail("restarting %s after the CNI cleanup failed" % unit, argv, rc, out, err)
    return list(units)
