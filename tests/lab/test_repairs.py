"""Repair, proven on the lab: inject a fault, run start-cluster.yml, check the cluster through the API, then
require a quiet second run (changed=0). Each repair's wall time is recorded (.lab/repair-times.json) and
printed by tests/run.sh. The control plane here is the LAB STAND-IN (tests/standin): these tests prove the
roles' decisions and repair flows, not real kubeadm or kubelet behaviour.

Order matters: the first test builds the cluster from empty nodes; each later test starts from a healthy
cluster and leaves one behind.
"""

import pytest

from conftest import api, decisions, lab, node, node_ready, playbook, record_time, task_results, wait_for

WORKER, CONTROL = "spark-ba63", "spark-2959"
# The lab's node-monitor grace: a Node whose kubelet stops posting goes Ready=Unknown this long after.
GRACE = 10


def healthy():
    client = api()
    assert node_ready(client, CONTROL) == "True"
    assert node_ready(client, WORKER) == "True"
    for name in (CONTROL, WORKER):
        assert node(name, "systemctl is-active kubelet", check=False).stdout.strip() == "active", name


def repair(name, *extra):
    """start-cluster.yml repairs the fault (something changed), the cluster is healthy, a second run is quiet."""
    first = playbook("start-cluster.yml", *extra)
    assert first.rc == 0, first
    assert first.changed > 0, first
    wait_for(lambda: node_ready(api(), WORKER) == "True" and node_ready(api(), CONTROL) == "True",
             timeout=60, what="both Nodes Ready")
    healthy()
    second = playbook("start-cluster.yml", *extra)
    assert second.rc == 0, second
    assert second.changed == 0, second
    record_time(name, first.seconds)
    record_time("no-op run after: " + name, second.seconds)
    return first


def test_build_from_empty_nodes(lab_ready):
    # The lab's stand-in node-monitor grace, shortened so the NotReady faults below take seconds.
    node(CONTROL, "mkdir -p /etc/standin && echo '{\"node_monitor_grace_period\": %d}' > /etc/standin/config" % GRACE)
    first = playbook("start-cluster.yml")
    assert first.rc == 0, first
    # A successful run never prints a failure, not even one it rescued itself.
    assert "fatal:" not in first.output and "FAILED!" not in first.output, first
    assert all(host["failed"] == 0 for host in first.recap.values()) and "rescued=1" not in first.output, first
    record_time("build both nodes from empty", first.seconds)
    second = playbook("start-cluster.yml")
    assert second.rc == 0 and second.changed == 0, second
    record_time("no-op run", second.seconds)
    healthy()


def test_fault_1_worker_kubelet_stopped(lab_ready):
    node(WORKER, "systemctl stop kubelet")
    run = repair("1 worker kubelet stopped")
    assert decisions(run.output) == {WORKER: ["restart_kubelet"]}, run
    # The plan is not a change: only the restart reports one.
    assert task_results(run.output, "Worker | Plan membership") == ["ok"], run
    assert task_results(run.output, "Worker | Restart the kubelet") == ["changed"], run


def test_check_diff_on_a_broken_lab_reports_the_repair_and_changes_nothing(lab_ready):
    node(WORKER, "systemctl stop kubelet")
    run = playbook("start-cluster.yml", "--check", "--diff")
    assert run.rc == 0, run
    assert "restart_kubelet" in run.output
    assert node(WORKER, "systemctl is-active kubelet", check=False).stdout.strip() == "inactive"
    repair("1b worker kubelet stopped (after --check)")


def test_fault_2_worker_node_deleted_from_the_api(lab_ready):
    before = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout
    api().delete_node(WORKER)
    run = repair("2 worker Node deleted from the API")
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout != before


def test_fault_3_worker_kubelet_conf_removed_while_not_ready(lab_ready):
    node(WORKER, "systemctl stop kubelet")
    wait_for(lambda: node_ready(api(), WORKER) in ("Unknown", "False"), timeout=GRACE * 6, what="worker NotReady")
    node(WORKER, "rm -f /etc/kubernetes/kubelet.conf")
    uid = api().read_node(WORKER).metadata.uid
    run = repair("3 worker kubelet.conf removed while NotReady")
    # pki/ca.crt and config.yaml are left over, so the decision is a reset before the join.
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert api().read_node(WORKER).metadata.uid != uid  # the stale Node was deleted, the join made a new one


def test_fault_3b_worker_wiped_while_its_node_is_still_ready(lab_ready):
    # A reinstalled worker, or one whose /etc/kubernetes was wiped, while the API still shows its Node Ready.
    # The plan describes the repair (delete the stale Node, then join), in --check too, instead of refusing it.
    node(WORKER, "rm -rf /etc/kubernetes/*")
    assert node_ready(api(), WORKER) == "True"
    uid = api().read_node(WORKER).metadata.uid
    check = playbook("start-cluster.yml", "--check", "--diff")
    assert check.rc == 0, check
    assert decisions(check.output) == {WORKER: ["reset_and_join"]}, check
    assert "the stale Node is deleted before the join" in check.output
    assert api().read_node(WORKER).metadata.uid == uid  # --check deleted nothing
    run = repair("3b worker wiped while its Node is Ready")
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert api().read_node(WORKER).metadata.uid != uid


def test_fault_4_stale_cni_netns_on_the_worker(lab_ready):
    # Left over from before a reboot: older than cni_cleanup's min_age, which protects sandboxes being created.
    node(WORKER, "mkdir -p /run/netns && touch -d '10 minutes ago' /run/netns/cni-0badc0de-dead-beef-0000-000000000000")
    wait_for(lambda: node_ready(api(), WORKER) == "False", timeout=30, what="worker NotReady from the stale netns")
    repair("4 stale CNI netns on the worker")
    assert node(WORKER, "ls /run/netns", check=False).stdout.strip() == ""


def test_fault_5_api_address_missing_on_the_control_plane(lab_ready):
    node(CONTROL, "ip addr del 10.10.10.1/24 dev enp1s0f1np1")
    repair("5 API address missing on the control plane")
    assert "10.10.10.1/24" in node(CONTROL, "ip -br addr show dev enp1s0f1np1").stdout


def test_fault_6_kubeadm_reset_hangs_during_a_rejoin(lab_ready):
    node(WORKER, "mkdir -p /etc/standin && touch /etc/standin/reset-hang")
    api().delete_node(WORKER)
    try:
        run = repair("6 kubeadm reset hangs during a re-join", "-e", "worker_reset_timeout=15")
    finally:
        node(WORKER, "rm -f /etc/standin/reset-hang", check=False)
    assert "kubeadm reset -f timed out (rc 124); running the forced reset" in run.output


def test_fault_7_worker_unreachable_fails_clearly_and_changes_nothing(lab_ready):
    control_before = node(CONTROL, "stat -c %Y /etc/kubernetes/admin.conf /etc/netplan/40-dgx-spark-fabric.yaml").stdout
    lab("lan", WORKER, "unplug")  # as if powered off: its LAN link goes away
    try:
        run = playbook("start-cluster.yml")
        assert run.rc != 0, run
        assert "spark-ba63" in run.output and "UNREACHABLE" in run.output, run
        assert run.recap[CONTROL]["changed"] == 0, run
        assert node(CONTROL, "stat -c %Y /etc/kubernetes/admin.conf /etc/netplan/40-dgx-spark-fabric.yaml").stdout == control_before
    finally:
        lab("lan", WORKER, "plug")
    record_time("7 worker unreachable (fails, nothing changed)", run.seconds)
    assert playbook("start-cluster.yml").changed == 0


def test_fault_8_control_plane_kubelet_stopped(lab_ready):
    node(CONTROL, "systemctl stop kubelet")
    run = repair("8 control-plane kubelet stopped")
    assert decisions(run.output) == {CONTROL: ["restart_kubelet"]}, run


def test_stop_then_start_is_a_restart_not_a_rejoin(lab_ready):
    uid = api().read_node(WORKER).metadata.uid
    stopped = playbook("stop-cluster.yml")
    assert stopped.rc == 0, stopped
    assert api().read_node(WORKER).spec.unschedulable
    for name in (CONTROL, WORKER):
        assert node(name, "systemctl is-active kubelet", check=False).stdout.strip() == "inactive"
    record_time("stop-cluster.yml", stopped.seconds)
    run = repair("start after stop-cluster.yml")
    assert decisions(run.output) == {CONTROL: ["restart_kubelet"], WORKER: ["restart_kubelet"]}, run
    assert api().read_node(WORKER).metadata.uid == uid
    assert not api().read_node(WORKER).spec.unschedulable


@pytest.mark.parametrize("extra", [[], ["-e", "reset_node_confirm=spark-2959"], ["-e", "reset_node_confirm=nobody"]],
                         ids=["no confirmation", "control plane without the second confirmation", "unknown node"])
def test_reset_node_refused_without_confirmation(lab_ready, extra):
    before = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout
    run = playbook("reset-node.yml", *extra)
    assert run.rc != 0, run
    assert "Refused, nothing was changed" in run.output
    assert node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout == before
    healthy()
