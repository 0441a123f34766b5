# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the ``cluster_lock`` module: one run at a time changes the cluster.

The lock is one small JSON file on the control plane (default ``/run/dgx-spark/cluster.lock``: tmpfs, so a
reboot frees it). Its content says who holds it::

    {"owner": "<run id>", "holder": "alice@laptop running start-cluster.yml", "acquired_at": 1700000000.0,
     "renewed_at": 1700000000.0, "expires_at": 1700003600.0, "stale_after": 3600, "version": 1}

* ``decide()``: the pure decision table (current lock content, now, request -> one decision). Every row is
  listed in ``DECISIONS`` and in docs/cluster_lock.md.
The I/O (the lock file under an exclusive ``flock`` of its directory, replaced by rename, and the loop that waits
for another holder) is in ``cluster_lock_io``.

Times are seconds since the epoch on the control plane's clock (the module runs there), so the controllers'
clocks never matter. No Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
import uuid

DEFAULT_PATH = "/run/dgx-spark/cluster.lock"
VERSION = 1

ACQUIRE = "acquire"  # nobody holds it: write ours
RENEW = "renew"  # we hold it already: push the expiry out
TAKE_OVER = "take_over"  # another run holds it but it is stale: replace it, warn naming the old holder
WAIT = "wait"  # another run holds it: try again later (in check mode: report that a real run would wait)
REFUSE = "refuse"  # another run holds it and we waited long enough: fail naming the holder
RELEASE = "release"  # we hold it: remove it
NOT_HELD = "not_held"  # release, but nobody holds it: nothing to do
NOT_MINE = "not_mine"  # release, but another run holds it: leave it alone

DECISIONS = (ACQUIRE, RENEW, TAKE_OVER, WAIT, REFUSE, RELEASE, NOT_HELD, NOT_MINE)
WRITES = (ACQUIRE, RENEW, TAKE_OVER)


# --- pure ------------------------------------------------------------------------------------------------------


def new_owner():
    """A run id: random, so two runs started in the same second from the same controller differ."""
    return uuid.uuid4().hex[:16]


def stamp(seconds):
    """UTC time for messages, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_lock(text, mtime=None):
    """The lock file's content as a dict. Content that is not a lock of ours is returned as
    ``{"unreadable": True, "mtime": mtime}``: its age is all we know about it."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("owner"), str) or not data.get("owner"):
        return {"unreadable": True, "mtime": mtime}
    for key in ("acquired_at", "renewed_at", "expires_at"):
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return {"unreadable": True, "mtime": mtime}
    data.setdefault("holder", "")
    return data


def render_lock(lock):
    return json.dumps(lock, sort_keys=True) + "\n"


def describe(lock):
    """Who holds the lock, in words, for messages."""
    if lock is None:
        return "nobody"
    if lock.get("unreadable"):
        since = (" (file written %s)" % stamp(lock["mtime"])) if lock.get("mtime") is not None else ""
        return "an unreadable lock file%s" % since
    return "%s (run %s, since %s)" % (lock.get("holder") or "an unnamed run", lock["owner"], stamp(lock["acquired_at"]))


def staleness(lock, now, stale_after):
    """Why the lock counts as stale (a non-empty reason), or '' when it is live.

    Stale: its own expiry has passed, or it is older than the requester's ``stale_after`` (counted from its last
    renewal). An unreadable file is stale when its mtime is that old."""
    if lock.get("unreadable"):
        mtime = lock.get("mtime")
        if mtime is None or now - mtime >= stale_after:
            return "the lock file is not a lock of ours and is %s old" % (
                "of unknown age" if mtime is None else "%d s" % (now - mtime))
        return ""
    if now >= lock["expires_at"]:
        return "it expired at %s" % stamp(lock["expires_at"])
    age = now - lock["renewed_at"]
    if age >= stale_after:
        return "it was last renewed %d s ago (stale_after %d s)" % (age, stale_after)
    return ""


def decide(lock, now, request):
    """One decision from plain data.

    lock: None (no lock file), or what parse_lock() returned.
    request: state ('acquired' | 'released'), owner, holder, stale_after, wait_timeout, waited (seconds this
    call has waited so far), check_mode.
    Returns a dict: decision (one of DECISIONS), write (the new lock content, or None), remove (bool),
    holder (the lock the decision is about, or None), msg, warning ('' or a warning for the run's output).
    """
    owner = request.get("owner")
    out = dict(decision=None, write=None, remove=False, holder=lock, msg="", warning="")
    mine = lock is not None and not lock.get("unreadable") and lock.get("owner") == owner and owner

    if request["state"] == "released":
        if lock is None:
            out.update(decision=NOT_HELD, msg="the cluster lock is not held; nothing to release")
        elif mine:
            out.update(decision=RELEASE, remove=True, msg="cluster lock of run %s released" % owner)
        else:
            out.update(decision=NOT_MINE, msg="the cluster lock is held by %s, not by run %s: left alone"
                       % (describe(lock), owner or "(none given)"))
        return out

    stale_after = request["stale_after"]
    fresh = dict(owner=owner, holder=request.get("holder") or "", acquired_at=now, renewed_at=now,
                 expires_at=now + stale_after, stale_after=stale_after, version=VERSION)
    if lock is None:
        out.update(decision=ACQUIRE, write=fresh, msg="cluster lock acquired by run %s" % owner)
        return out
    if mine:
        renewed = dict(lock, renewed_at=now, expires_at=now + stale_after, stale_after=stale_after,
                       holder=request.get("holder") or lock.get("holder", ""))
        out.update(decision=RENEW, write=renewed, msg="cluster lock of run %s renewed" % owner)
        return out
    reason = staleness(lock, now, stale_after)
    if reason:
        out.update(decision=TAKE_OVER, write=fresh,
                   msg="cluster lock taken over by run %s" % owner,
                   warning="took over the stale cluster lock held by %s: %s" % (describe(lock), reason))
        return out
    waited = request.get("waited", 0)
    if request.get("check_mode"):
        out.update(decision=WAIT, msg="the cluster lock is held by %s" % describe(lock),
                   warning="check mode: the cluster lock is held by %s; a real run would %s" % (
                       describe(lock), "wait up to %d s for it" % request["wait_timeout"]
                       if request["wait_timeout"] > 0 else "refuse to start"))
        return out
    if waited >= request["wait_timeout"]:
        out.update(decision=REFUSE, msg=refusal(lock, now, request))
        return out
    out.update(decision=WAIT, msg="the cluster lock is held by %s" % describe(lock))
    return out


def refusal(lock, now, request):
    if lock.get("unreadable"):
        when = "when the file is %d s old" % request["stale_after"]
    else:
        when = "at %s" % stamp(min(lock["expires_at"], lock["renewed_at"] + request["stale_after"]))
    return ("Another run is changing the cluster: the cluster lock %s is held by %s; waited %d s (wait_timeout %d s). "
            "Nothing was changed by this run. Run again when that run has finished. If that run is gone (killed, its "
            "controller lost), its lock counts as stale %s and is then taken over, or remove %s on the control plane."
            % (request.get("path", DEFAULT_PATH), describe(lock), request.get("waited", 0),
               request["wait_timeout"], when, request.get("path", DEFAULT_PATH)))
