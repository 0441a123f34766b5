#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_lock
short_description: One run at a time changes the cluster (a lock file on the control plane)
version_added: "0.1.0"
description:
  - Acquires or releases the cluster lock, a small JSON file on the control plane (O(path), under C(/run), a tmpfs, so
    a reboot frees it) that says which run holds it (O(owner), a run id) and who started that run (O(holder)).
  - "O(state=acquired): when nobody holds the lock it is written for O(owner); when O(owner) holds it already its
    expiry is renewed; when another run holds it, the module waits (polling every O(poll_interval) seconds, printing
    nothing, since modules cannot stream) up to O(wait_timeout) seconds and then fails with a message that names the
    holder, since when it holds the lock and how long this call waited. A lock that is stale (its expiry passed, or
    it was last renewed O(stale_after) seconds ago or more) is taken over, with a warning naming the old holder. After
    waiting, a warning names the run it waited for and for how long."
  - "O(state=released): the lock is removed only when O(owner) holds it. A lock held by another run is left alone
    (RV(decision=not_mine)), and a missing lock is fine (RV(decision=not_held))."
  - Every read-decide-write cycle runs under an exclusive C(flock) of the lock's directory and the file is replaced by
    rename, so two runs can never both acquire it and nobody reads a partial file.
  - "The module never reports C(changed): acquiring and releasing the run's own lock is bookkeeping of the run, not a
    change to a node. A run that changes nothing on the cluster acquires and releases the lock and still reports
    C(changed=0), as the collection promises. What happened is in RV(decision)."
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  state:
    description: V(acquired) takes (or renews) the lock, V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  owner:
    description:
      - The run id. Acquiring without one generates a random id, returned in RV(owner); pass it to every later
        acquire and to the release of the same run.
      - Required with O(state=released).
    type: str
  holder:
    description:
      - Who runs, in words, recorded in the lock and shown to any run that finds it held, for example
        C(alice@laptop running start-cluster.yml). Never put secrets here.
    type: str
    default: ""
  path:
    description: The lock file. Its directory is created (mode 0755) when missing.
    type: path
    default: /run/dgx-spark/cluster.lock
  wait_timeout:
    description: Seconds to wait for another run to release the lock before failing. V(0) fails at once.
    type: int
    default: 600
  stale_after:
    description:
      - Seconds after its last renewal when a lock counts as abandoned and is taken over. Longer than the longest run
        (a first build with the slowest joins), since a live run's lock must never be taken.
      - Also written into the lock as its expiry, so every run sees the holder's own limit.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two looks at a lock held by another run.
    type: float
    default: 2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Writes, renews and removes nothing, creates no directory and never waits. It reports the decision a real run
        would make; when another run holds the lock it says so in a warning naming the holder (a real run would wait).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Linux (C(flock) of the lock's directory on the control plane).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: It never reports C(changed) (run bookkeeping, see the description); acquiring twice renews the expiry.
notes:
  - Needs write access to the directory of O(path) (root for C(/run)); run it on the control plane with C(become).
  - All times are the control plane's clock, so the controllers' clocks do not matter.
  - A run that is killed (Ctrl-C, an AWX job cancelled) cannot release its lock; it stays until O(stale_after) passed,
    the control plane reboots, or someone removes the file.
  - The decision table, the run id, the release on failure and the C(changed) semantics are explained in
    C(docs/cluster_lock.md) of the collection; the C(dgx_spark.cluster.cluster_lock) role wraps this module.
"""

EXAMPLES = r"""
- name: Take the cluster lock (wait up to 10 minutes for another run)
  dgx_spark.cluster.cluster_lock:
    state: acquired
    holder: "{{ lookup('ansible.builtin.env', 'USER') }} running start-cluster.yml"
  delegate_to: "{{ groups['control_plane'] | first }}"
  run_once: true
  become: true
  register: lock

- name: Give it back
  dgx_spark.cluster.cluster_lock:
    state: released
    owner: "{{ lock.owner }}"
  delegate_to: "{{ groups['control_plane'] | first }}"
  run_once: true
  become: true

- name: Refuse at once when another run holds it
  dgx_spark.cluster.cluster_lock:
    owner: "{{ lock.owner }}"
    wait_timeout: 0
  become: true
"""

RETURN = r"""
decision:
  description:
    - "What the module decided (in check mode, what a real run would do): V(acquire), V(renew), V(take_over),
      V(wait) (check mode only: another run holds it), V(release), V(not_held), V(not_mine). V(refuse) comes with a
      failure."
  returned: always
  type: str
  sample: acquire
owner:
  description: The run id (generated when not given).
  returned: always
  type: str
  sample: 3f2a9c0d41b7e6a8
acquired:
  description: Whether this run holds the lock now (false in check mode, which writes nothing).
  returned: always
  type: bool
released:
  description: Whether this call removed the lock (false in check mode).
  returned: always
  type: bool
holder:
  description: The lock as found before the decision (null when there was none), for example the run waited for.
  returned: always
  type: dict
  sample: {"owner": "3f2a9c0d41b7e6a8", "holder": "alice@laptop running start-cluster.yml",
           "acquired_at": 1700000000.0, "renewed_at": 1700000000.0, "expires_at": 1700003600.0,
           "stale_after": 3600, "version": 1}
waited_for:
  description: The lock of the run this call waited for (null when it did not wait).
  returned: always
  type: dict
waited:
  description: Seconds this call waited for another run.
  returned: always
  type: float
  sample: 93.4
taken_over:
  description: The stale lock that was replaced (null unless RV(decision=take_over)).
  returned: always
  type: dict
lock_file:
  description: The lock file (named so, since a C(path) key makes Ansible add the file's attributes to the result).
  returned: always
  type: str
  sample: /run/dgx-spark/cluster.lock
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cluster_lock as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cluster_lock_io


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], default="acquired"),
            owner=dict(type="str"),
            holder=dict(type="str", default=""),
            path=dict(type="path", default=core.DEFAULT_PATH),
            wait_timeout=dict(type="int", default=600),
            stale_after=dict(type="int", default=3600),
            poll_interval=dict(type="float", default=2.0),
        ),
        required_if=[("state", "released", ["owner"])],
        supports_check_mode=True,
    )


def run_module(module):
    p = module.params
    for name, low in (("wait_timeout", 0), ("stale_after", 60)):
        if p[name] < low:
            module.fail_json(msg="%s must be at least %d (got %d)" % (name, low, p[name]))
    if p["poll_interval"] <= 0:
        module.fail_json(msg="poll_interval must be above 0 (got %s)" % p["poll_interval"])
    owner = p["owner"] or (core.new_owner() if p["state"] == "acquired" else None)
    request = dict(state=p["state"], owner=owner, holder=p["holder"], path=p["path"], check_mode=module.check_mode,
                   wait_timeout=p["wait_timeout"], stale_after=p["stale_after"], poll_interval=p["poll_interval"])
    try:
        result = cluster_lock_io.run(cluster_lock_io.LockDir(p["path"]), request)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cluster lock %s: %s" % (p["path"], exc), owner=owner, lock_file=p["path"])
    decision = result["decision"]
    out = dict(changed=False, decision=decision, owner=owner, lock_file=p["path"], msg=result["msg"],
               acquired=decision in core.WRITES and not module.check_mode,
               released=decision == core.RELEASE and not module.check_mode,
               holder=result["holder"], waited=result["waited"], waited_for=result["first_holder"],
               taken_over=result["holder"] if decision == core.TAKE_OVER else None)
    if decision == core.REFUSE:
        module.fail_json(**out)
    if result["first_holder"] is not None and not module.check_mode:
        module.warn("waited %d s for the cluster lock held by %s; %s" % (
            result["waited"], core.describe(result["first_holder"]), result["msg"]))
    if result["warning"]:
        module.warn(result["warning"])
    module.exit_json(**out)


def main():
    run_module(build_module())


if __name__ == "__main__":
    main()
