# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of the ``cluster_lock`` module: the lock file and the wait loop; every decision is cluster_lock.decide().

* ``LockDir``: read; write by temporary file + rename (a reader sees the old content or the new, never a partial
  file); remove. Every read-decide-write cycle runs under an exclusive ``flock`` of the lock's directory, so two
  runs can never both decide "acquire". The flock is held for milliseconds, never while waiting for another run.
* ``run()``: read, decide, act; while another run holds the lock, sleep and try again (injectable clock and sleep).

No Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import tempfile
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils.cluster_lock import WAIT, decide, parse_lock, render_lock


class LockDir(object):
    """The lock file and its directory. ``guard()`` holds an exclusive flock of the directory for one
    read-decide-write cycle (milliseconds; never while waiting for another run)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        self._fd = None

    def exists(self):
        return os.path.isdir(self.directory)

    def make(self):
        try:
            os.makedirs(self.directory, 0o755)
        except OSError as exc:  # another run made it in the same instant
            if exc.errno != errno.EEXIST or not os.path.isdir(self.directory):
                raise

    def __enter__(self):
        self._fd = os.open(self.directory, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        return False

    def read(self):
        try:
            with open(self.path) as handle:
                text = handle.read()
                mtime = os.fstat(handle.fileno()).st_mtime
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        return parse_lock(text, mtime)

    def write(self, lock):
        """Replace the lock file at once: readers see the old content or the new, never a partial one."""
        fd, tmp = tempfile.mkstemp(prefix=".cluster-lock-", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(render_lock(lock))
            os.chmod(tmp, 0o644)
            os.rename(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def remove(self):
        try:
            os.unlink(self.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


def run(lockdir, request, clock=time.time, sleep=time.sleep):
    """Read, decide, act; while another run holds the lock, sleep and try again until wait_timeout.

    Check mode reads only (no directory created, no write, no removal, no waiting). Returns the last
    decision (see decide()) with ``waited`` (seconds) and ``first_holder`` (the lock first seen held by
    another run, or None) added."""
    check_mode = request.get("check_mode", False)
    started = clock()
    first_holder = None
    while True:
        request = dict(request, waited=int(clock() - started))
        if check_mode and not lockdir.exists():
            result = decide(None, clock(), request)
        elif check_mode:
            with lockdir:
                result = decide(lockdir.read(), clock(), request)
        else:
            lockdir.make()
            with lockdir:
                result = decide(lockdir.read(), clock(), request)
                if result["write"] is not None:
                    lockdir.write(result["write"])
                elif result["remove"]:
                    lockdir.remove()
        if result["decision"] == WAIT and first_holder is None:
            first_holder = result["holder"]
        if result["decision"] != WAIT or check_mode:
            result.update(waited=round(clock() - started, 1), first_holder=first_holder)
            return result
        remaining = request["wait_timeout"] - (clock() - started)
        sleep(max(0.05, min(request.get("poll_interval", 2.0), remaining)))
