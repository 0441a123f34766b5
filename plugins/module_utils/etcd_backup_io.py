# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O layer of ``etcd_snapshot``: runs crictl (and through it etcdctl and etcdutl inside the etcd container) with the
collection's CommandRunner, reads the etcd manifest, and moves files and directories for a restore.  Nothing here
decides: etcd_backup.py does.  No Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import etcd_backup

CRICTL_DIRS = ["/usr/bin", "/usr/local/bin"]
CRICTL_TIMEOUT = 30
SAVE_TIMEOUT = 300
RESTORE_TIMEOUT = 600
POLL_INTERVAL = 2


class Etcd(object):
    """The etcd static pod of this node, as crictl sees it."""

    def __init__(self, runner, cri_socket, sleep=time.sleep, clock=time.monotonic):
        self.runner = runner
        self.cri_socket = cri_socket
        self.crictl = runner.binary("crictl", extra_paths=CRICTL_DIRS)
        self.sleep = sleep
        self.clock = clock

    def running(self, container_name):
        """Ids of the running containers of that name (kubeadm names each static pod's container like its pod)."""
        rc, out, err = self.runner.run(etcd_backup.crictl_ps_argv(self.crictl, self.cri_socket, container_name),
                                       check=False, timeout=CRICTL_TIMEOUT)
        try:
            return etcd_backup.container_ids(rc, out, err)
        except ValueError as exc:
            self.runner.fail("cannot list the %s containers" % container_name,
                             etcd_backup.crictl_ps_argv(self.crictl, self.cri_socket, container_name), rc, out, err,
                             detail=str(exc))
            raise  # not reached: fail ends the module

    def container(self):
        """The running etcd container's id, or None."""
        ids = self.running("etcd")
        return ids[0] if ids else None

    def exec_argv(self, container_id, command):
        return etcd_backup.crictl_exec_argv(self.crictl, self.cri_socket, container_id, command)

    def run_in(self, container_id, command, timeout, msg, check=True):
        return self.runner.run(self.exec_argv(container_id, command), check=check, timeout=timeout, msg=msg)

    def wait_gone(self, names, timeout):
        """Wait until no container of ``names`` runs; returns the names still running at the timeout ([] when gone)."""
        deadline = self.clock() + timeout
        while True:
            left = [name for name in names if self.running(name)]
            if not left or self.clock() >= deadline:
                return left
            self.sleep(POLL_INTERVAL)

    def wait_healthy(self, endpoint, pki_dir, timeout):
        """Wait until a running etcd container answers ``etcdctl endpoint health``; returns (container id, last error)."""
        deadline = self.clock() + timeout
        last = "no etcd container running yet"
        while True:
            container_id = self.container()
            if container_id:
                rc, out, err = self.run_in(container_id, etcd_backup.health_command(endpoint, pki_dir), 30,
                                           "etcd health", check=False)
                if rc == 0:
                    return container_id, None
                last = "etcdctl endpoint health rc %s: %s" % (rc, (err or out or "").strip()[:300])
            if self.clock() >= deadline:
                return None, last
            self.sleep(POLL_INTERVAL)


def read_text(path):
    with open(path, "r") as handle:
        return handle.read()


def make_private_dir(path):
    """Create the snapshot directory (0700: a snapshot holds every Secret of the cluster); True when created."""
    if os.path.isdir(path):
        return False
    os.makedirs(path, 0o700)
    return True


def list_files(path):
    try:
        return sorted(os.path.join(path, name) for name in os.listdir(path)
                      if os.path.isfile(os.path.join(path, name)))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise


def remove_files(paths):
    """Delete files (already gone is fine); returns (removed, errors)."""
    removed, errors = [], []
    for path in paths:
        try:
            os.unlink(path)
            removed.append(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            errors.append("%s: %s" % (path, exc.strerror))
    return removed, errors


def move_manifests_aside(plan):
    """Move the static pods' manifests out of the kubelet's directory; returns those moved (missing ones are skipped)."""
    moved = []
    if not os.path.isdir(plan["manifests_aside"]):
        os.makedirs(plan["manifests_aside"], 0o700)
    for item in plan["manifests"]:
        if os.path.exists(item["src"]):
            os.rename(item["src"], item["aside"])
            moved.append(item)
    return moved


def put_manifests_back(moved):
    """Put moved manifests back; returns errors (the directory they wait in stays when one could not go back)."""
    errors = []
    for item in moved:
        try:
            os.rename(item["aside"], item["src"])
        except OSError as exc:
            errors.append("%s -> %s: %s" % (item["aside"], item["src"], exc.strerror))
    return errors


def swap_member(plan):
    """Old member directory aside (kept), restored one in its place, the empty restore directory removed.

    Puts the old member back when the second move fails, and re-raises."""
    os.rename(plan["member"], plan["member_aside"])
    try:
        os.rename(plan["restored_member"], plan["member"])
    except OSError:
        os.rename(plan["member_aside"], plan["member"])
        raise
    try:
        os.rmdir(plan["restore_dir"])
    except OSError:
        pass  # not empty: kept, reported by its path
