"""Sleep and wake on the lab (issue 14): sleep-cluster.yml on the worker, then wake-cluster.yml, end to end.

The lab's suspend is the LAB command of inventory/lab/hosts.yml: it asks lab/power_listener.py (started by
lab/lab.sh up) to `podman pause` the node; only a real magic packet for the node's MAC, sent by wake-cluster.yml to
the lab LAN's broadcast address and arriving on the lab LAN bridge, makes the listener unpause it. What only real
Sparks prove: the suspend itself and the NIC's Wake-on-LAN (a veth has none; see the README). Runs after
test_repairs.py (which builds the cluster) and leaves a healthy cluster behind.
"""

import os
import re

from conftest import REPO, api, flat, lab, node, node_ready, playbook, record_time, wait_for

WORKER, CONTROL = "spark-ba63", "spark-2959"
WORKER_MAC, CONTROL_MAC = "4c:bb:47:2c:ba:63", "4c:bb:47:2e:29:59"
POWER_LOG = os.path.join(REPO, ".lab", "power.log")
ANNOTATION = "dgx-spark.cluster/cordoned-by"


def container_status(name):
    """The node container's state as lab/lab.sh status reports it (running, paused, ...)."""
    match = re.search(r"^%s\s+(\S+)" % re.escape(name), lab("status").stdout, re.M)
    return match.group(1) if match else None


def power_log():
    with open(POWER_LOG) as handle:
        return handle.read()


def worker_node():
    return api().read_node(WORKER)


def test_the_lab_has_its_power_listener_and_the_nodes_their_power_directory(lab_ready):
    assert re.search(r"^power-listener\s+running", lab("status").stdout, re.M), lab("status").stdout
    for name in (CONTROL, WORKER):
        assert node(name, "test -d /lab-power", check=False).returncode == 0, (
            "%s has no /lab-power: it was created before lab.sh mounted it; recreate the lab (lab/lab.sh down; "
            "lab/lab.sh up)" % name)


def test_check_mode_sleep_says_what_it_would_do_and_changes_nothing(lab_ready):
    before_log = power_log()
    run = playbook("sleep-cluster.yml", "--limit", WORKER, "--check")
    assert run.rc == 0, run
    assert "spark-ba63 would run" in flat(run.output), run
    assert container_status(WORKER) == "running"
    item = worker_node()
    assert not item.spec.unschedulable
    assert ANNOTATION not in (item.metadata.annotations or {})
    assert node(WORKER, "systemctl is-active kubelet", check=False).stdout.strip() == "active"
    assert node(WORKER, "test -e /lab-power/suspend-request", check=False).returncode != 0
    assert power_log() == before_log


def test_sleep_the_worker_then_wake_the_cluster(lab_ready):
    log_before = len(power_log())
    slept = playbook("sleep-cluster.yml", "--limit", WORKER)
    assert slept.rc == 0, slept
    record_time("sleep-cluster.yml --limit spark-ba63 (LAB suspend: podman pause)", slept.seconds)
    # Asleep: the LAB suspend paused the node container, the Node is cordoned and marked as ours.
    wait_for(lambda: container_status(WORKER) == "paused", timeout=30, what="the worker container paused")
    item = worker_node()
    assert item.spec.unschedulable
    assert (item.metadata.annotations or {}).get(ANNOTATION) == "sleep-cluster"
    assert "suspend request from %s" % WORKER in power_log()[log_before:]
    assert container_status(CONTROL) == "running"

    woke = playbook("wake-cluster.yml")
    assert woke.rc == 0, woke
    record_time("wake-cluster.yml after the worker slept (magic packet, unpause, start-cluster)", woke.seconds)
    log = power_log()[log_before:]
    # The real magic packet crossed the lab LAN (from the controller's address on the bridge) for the right MAC.
    assert re.search(r"magic packet for %s \(%s\) from 192\.168\.86\.1:\d+ on UDP 9" % (WORKER_MAC, WORKER), log), log
    assert "%s unpaused (awake)" % WORKER in log
    # The control plane answered, so it got no packet.
    assert "magic packet for %s" % CONTROL_MAC not in log, log
    assert container_status(WORKER) == "running"
    # start-cluster.yml (imported by wake-cluster.yml): the kubelet back, Ready, uncordoned, the mark removed.
    assert node_ready(api(), WORKER) == "True"
    item = worker_node()
    assert not item.spec.unschedulable
    assert ANNOTATION not in (item.metadata.annotations or {})
    assert node(WORKER, "systemctl is-active kubelet", check=False).stdout.strip() == "active"
    quiet = playbook("start-cluster.yml")
    assert quiet.rc == 0, quiet
    assert quiet.changed == 0, quiet


def test_wake_on_an_awake_cluster_sends_no_packet(lab_ready):
    log_before = len(power_log())
    woke = playbook("wake-cluster.yml")
    assert woke.rc == 0, woke
    assert "magic packet" not in power_log()[log_before:]
    assert woke.changed == 0, woke
