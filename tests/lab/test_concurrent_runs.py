"""Two start-cluster.yml runs at the same time, proven on the lab: the cluster lock (roles/cluster_lock,
docs/cluster_lock.md) lets one run repair and makes the other wait for it, instead of both re-joining the worker
(before the lock, the second failed in the middle of `kubeadm join`, rc 2).



"""

import os
import subprocess
import time

from conftest import BIN, INVENTORY, REPO, Run, api, decisions, node, node_ready, record_time, wait_for

WORKER, CONTROL = "spark-ba63", "spark-2959"
LOCK = "/run/dgx-spark/cluster.lock"


def start(holder):
    """start-cluster.yml in the background; the holder description names the run in the lock and in messages."""
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, os.path.join(REPO, "playbooks", "start-cluster.yml"),
            "-e", "cluster_lock_holder='%s'" % holder]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return argv, proc, time.monotonic()


def finish(started):
    argv, proc, began = started
    output, _err = proc.communicate(timeout=1200)
    return Run(argv, proc.returncode, output, time.monotonic() - began)


def flat(text):
    """Warnings may be wrapped to the terminal width: compare with single spaces."""
    return " ".join(text.split())


def test_two_start_cluster_runs_one_second_apart_against_a_deleted_worker_node(lab_ready):
    assert node_ready(api(), WORKER) == "True"
    api().delete_node(WORKER)
    first = start("lab run A")
    time.sleep(1)
    second = start("lab run B")
    runs = {"lab run A": finish(first), "lab run B": finish(second)}

    for name, run in runs.items():
        assert run.rc == 0, "%s: %r" % (name, run)
    rejoined = [name for name, run in runs.items()
                if decisions(run.output).get(WORKER, []) and decisions(run.output)[WORKER][-1] in ("join", "reset_and_join")]
    assert len(rejoined) == 1, dict((name, decisions(run.output)) for name, run in runs.items())
    winner = rejoined[0]
    waiter = [name for name in runs if name != winner][0]
    # The run that waited found a healthy worker: it decided nothing for it (no repair line) and changed nothing.
    assert WORKER not in decisions(runs[waiter].output), runs[waiter]
    text = flat(runs[waiter].output)
    assert "waited " in text and "for the cluster lock held by %s (run " % winner in text, runs[waiter]
    assert runs[waiter].changed == 0, runs[waiter]

    wait_for(lambda: node_ready(api(), WORKER) == "True" and node_ready(api(), CONTROL) == "True",
             timeout=60, what="both Nodes Ready")
    # Both runs released the lock: nothing is left on the control plane.
    assert node(CONTROL, "test -e %s" % LOCK, check=False).returncode == 1
    after = finish(start("lab run C"))
    assert after.rc == 0 and after.changed == 0, after
    assert "for the cluster lock held by" not in flat(after.output), after  # nothing held it: no wait,
    assert "took over the stale cluster lock" not in flat(after.output), after  # and no takeover
    record_time("two runs at once against a deleted worker Node (the later one to finish)",
                max(run.seconds for run in runs.values()))
