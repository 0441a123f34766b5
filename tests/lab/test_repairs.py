"""Repair, proven on the lab: inject a fault, run start-cluster.yml, check the cluster through the API, then
require a quiet second run (changed=0). Each repair's wall time is recorded (.lab/repair-times.json) and
printed by tests/run.sh. The cluster here is real Kubernetes (kubeadm, kubelet, etcd and the control plane
v1.31.14, built by lab/build-kubernetes.sh) in the podman nodes of lab/lab.sh; its pod network is the lab's
bridge CNI (lab/image/lab-cni.sh), not Calico.

Order matters: the first test builds the cluster from empty nodes; each later test starts from a healthy
cluster and leaves one behind.
"""

import pytest

from conftest import (api, check_cluster, decisions, http_pod, kubectl, lab, node, node_ready, playbook, pod_ready,
                      record_time, task_results, wait_for)

WORKER, CONTROL = "spark-ba63", "spark-2959"
# The lab's node-monitor grace (inventory/lab/hosts.yml): a Node whose kubelet stops posting goes Ready=Unknown
# this long after.
GRACE = 20


def healthy():
    client = api()
    assert node_ready(client, CONTROL) == "True"
    assert node_ready(client, WORKER) == "True"
    for name in (CONTROL, WORKER):
        assert node(name, "systemctl is-active kubelet", check=False).stdout.strip() == "active", name


def repair(name, *extra):
    """start-cluster.yml repairs the fault (something changed), the cluster is healthy, a second run is quiet."""
    first = playbook("start-cluster.yml", *extra)
    assert first.rc == 0, "%r\n--- the lab's pod network and pods ---\n%s" % (first, lab_pod_network())
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


def flagged(tmp_path, subject, severity, status="failed"):
    """Before the repair, the health report (scripts/check-cluster.sh) names the fault: the finding for ``subject``
    has ``severity``, and the report's status and exit code are ``status``'s (the lab is at least degraded: it has
    no GPUs)."""
    result, data, unused = check_cluster(tmp_path)
    output = result.stdout + result.stderr
    assert data is not None, output
    found = dict((f["subject"], f["severity"]) for f in data["findings"])
    assert found.get(subject) == severity, data["findings"]
    assert data["status"] == status, data["findings"]
    assert result.returncode == {"degraded": 1, "failed": 2}[status], output


def lab_pod_network():
    """What to read when a repair fails on the lab: lab-cni's last lines, the bridge and the pods on each node."""
    return "\n".join(
        "[%s]\n%s" % (name, node(name, "journalctl -u lab-cni -n 15 --no-pager -o cat; ip -4 -o addr show dev cni0; "
                                       "crictl pods 2>&1 | head -n 25", check=False).stdout)
        for name in (CONTROL, WORKER))


def delete_pods(*names):
    client = api()
    for name in names:
        try:
            client.delete_namespaced_pod(name, "default", grace_period_seconds=0)
        except Exception:  # pylint: disable=broad-except
            pass
    wait_for(lambda: not any(pod.metadata.name in names for pod in client.list_namespaced_pod("default").items),
             timeout=60, what="pods %s deleted" % ", ".join(names))


def test_build_from_empty_nodes(lab_ready):
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
    # The real versions: the Nodes' kubelets and kubeadm on a node.
    for item in api().list_node().items:
        assert item.status.node_info.kubelet_version == "v1.31.14", item.metadata.name
    assert node(WORKER, "kubeadm version -o short").stdout.strip() == "v1.31.14"


def test_a_pod_on_each_node_answers_the_other(lab_ready):
    client = api()
    for name, on in (("answer-cp", CONTROL), ("answer-worker", WORKER)):
        client.create_namespaced_pod("default", http_pod(name, on))
    try:
        pods = [wait_for(lambda n=name: pod_ready(api(), n), timeout=90, what=name + " Ready")
                for name in ("answer-cp", "answer-worker")]
        assert [pod.spec.node_name for pod in pods] == [CONTROL, WORKER]
        for source, target in ((pods[0], pods[1]), (pods[1], pods[0])):
            # A real HTTP request from one pod to the other pod's address, across the lab fabric (busybox nc:
            # the static busybox's wget crashes in glibc's resolver).
            reply = kubectl("exec", source.metadata.name, "--", "sh", "-c",
                            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 %s 8080" % target.status.pod_ip)
            assert reply.stdout.splitlines()[0].startswith("HTTP/1.") and " 200 " in reply.stdout.splitlines()[0], reply
            assert reply.stdout.strip().splitlines()[-1] == target.metadata.name, (source.metadata.name, reply)
    finally:
        delete_pods("answer-cp", "answer-worker")


def test_fault_1_worker_kubelet_stopped(lab_ready, tmp_path):
    node(WORKER, "systemctl stop kubelet")
    flagged(tmp_path, WORKER + " membership", "failed")
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


def test_fault_2_worker_node_deleted_from_the_api(lab_ready, tmp_path):
    before = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout
    api().delete_node(WORKER)
    flagged(tmp_path, WORKER + " membership", "failed")
    run = repair("2 worker Node deleted from the API")
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout != before


def test_fault_3_worker_kubelet_conf_removed_while_not_ready(lab_ready, tmp_path):
    node(WORKER, "systemctl stop kubelet")
    wait_for(lambda: node_ready(api(), WORKER) in ("Unknown", "False"), timeout=GRACE * 6, what="worker NotReady")
    node(WORKER, "rm -f /etc/kubernetes/kubelet.conf")
    uid = api().read_node(WORKER).metadata.uid
    flagged(tmp_path, WORKER + " membership", "failed")
    run = repair("3 worker kubelet.conf removed while NotReady")
    # pki/ca.crt and config.yaml are left over, so the decision is a reset before the join.
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert api().read_node(WORKER).metadata.uid != uid  # the stale Node was deleted, the join made a new one


def test_fault_3b_worker_wiped_while_its_node_is_still_ready(lab_ready, tmp_path):
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
    flagged(tmp_path, WORKER + " membership", "failed")
    run = repair("3b worker wiped while its Node is Ready")
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert api().read_node(WORKER).metadata.uid != uid


def test_fault_4_stale_cni_netns_on_the_worker(lab_ready, tmp_path):
    # A real network namespace whose sandbox is gone, left from before a reboot: made as CNI makes one, then its
    # mount lost without a CNI DEL, so the file stays and `ip netns` reports it invalid. Older than cni_cleanup's
    # min_age, which protects sandboxes being created. A running pod's namespace on the same node must survive.
    stale = "cni-0badc0de-dead-beef-0000-000000000000"
    api().create_namespaced_pod("default", http_pod("live-pod", WORKER))
    try:
        wait_for(lambda: pod_ready(api(), "live-pod"), timeout=90, what="live-pod Ready")
        live = set(node(WORKER, "ls /run/netns").stdout.split())
        assert live, "the running pod has a network namespace"
        node(WORKER, "ip netns add {0} && umount /run/netns/{0} && touch -d '10 minutes ago' /run/netns/{0}".format(stale))
        flagged(tmp_path, WORKER + " CNI state", "degraded", status="degraded")
        run = repair("4 stale CNI netns on the worker")
        assert decisions(run.output) == {}, run
        assert task_results(run.output, "Worker | Stale CNI state removed") == ["changed"], run
        after = set(node(WORKER, "ls /run/netns").stdout.split())
        assert stale not in after and live <= after, after
        assert pod_ready(api(), "live-pod")
    finally:
        delete_pods("live-pod")


def test_fault_5_api_address_missing_on_the_control_plane(lab_ready, tmp_path):
    node(CONTROL, "ip addr del 10.10.10.1/24 dev enp1s0f1np1")
    flagged(tmp_path, CONTROL + " addresses", "failed")
    repair("5 API address missing on the control plane")
    assert "10.10.10.1/24" in node(CONTROL, "ip -br addr show dev enp1s0f1np1").stdout


def test_fault_6_kubeadm_reset_hangs_during_a_rejoin(lab_ready):
    # A kubelet that does not exit when it is stopped, as one stuck in uninterruptible sleep: its stop signal is one
    # it ignores (SIGURG), and systemd waits for it without limit. kubeadm reset's own `systemctl stop kubelet` then
    # never returns. (SIGSTOP alone is no hang: systemd sends SIGCONT after the stop signal.)
    dropin = "/run/systemd/system/kubelet.service.d/90-lab-fault-6.conf"
    node(WORKER, "mkdir -p %s && printf '[Service]\\nKillSignal=SIGURG\\nTimeoutStopSec=infinity\\n' > %s"
         " && systemctl daemon-reload" % (dropin.rsplit("/", 1)[0], dropin))
    api().delete_node(WORKER)
    try:
        run = repair("6 kubeadm reset hangs during a re-join", "-e", "worker_reset_timeout=15")
    finally:
        node(WORKER, "rm -f %s; systemctl daemon-reload" % dropin, check=False)
    assert decisions(run.output) == {WORKER: ["reset_and_join"]}, run
    assert "kubeadm reset -f timed out (rc 124); running the forced reset" in run.output


def test_fault_7_worker_unreachable_fails_clearly_and_changes_nothing(lab_ready, tmp_path):
    control_before = node(CONTROL, "stat -c %Y /etc/kubernetes/admin.conf /etc/netplan/40-dgx-spark-fabric.yaml").stdout
    lab("lan", WORKER, "unplug")  # as if powered off: its LAN link goes away
    try:
        run = playbook("start-cluster.yml")
        assert run.rc != 0, run
        assert "spark-ba63" in run.output and "UNREACHABLE" in run.output, run
        assert run.recap[CONTROL]["changed"] == 0, run
        assert node(CONTROL, "stat -c %Y /etc/kubernetes/admin.conf /etc/netplan/40-dgx-spark-fabric.yaml").stdout == control_before
        flagged(tmp_path, WORKER, "failed")
    finally:
        lab("lan", WORKER, "plug")
    record_time("7 worker unreachable (fails, nothing changed)", run.seconds)
    assert playbook("start-cluster.yml").changed == 0


def test_fault_8_control_plane_kubelet_stopped(lab_ready, tmp_path):
    node(CONTROL, "systemctl stop kubelet")
    flagged(tmp_path, CONTROL + " membership", "failed")
    run = repair("8 control-plane kubelet stopped")
    assert decisions(run.output) == {CONTROL: ["restart_kubelet"]}, run


def pdb_protected_app():
    """One replica on the worker behind a PodDisruptionBudget: the drain must evict it through the eviction API."""
    from kubernetes import client as k8s

    apps, policy = k8s.AppsV1Api(api().api_client), k8s.PolicyV1Api(api().api_client)
    template = http_pod("pdb-app", WORKER)
    del template["spec"]["nodeName"]
    template["spec"]["nodeSelector"] = {"kubernetes.io/hostname": WORKER}
    apps.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pdb-app"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pdb-app"}},
                 "template": {"metadata": {"labels": {"app": "pdb-app"}}, "spec": template["spec"]}}})
    policy.create_namespaced_pod_disruption_budget("default", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb-app"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "pdb-app"}}}})
    return apps, policy


def app_pods(ready_only=False):
    pods = api().list_namespaced_pod("default", label_selector="app=pdb-app").items
    return [p for p in pods if not ready_only or pod_ready(api(), p.metadata.name)]


def test_stop_then_start_is_a_restart_not_a_rejoin(lab_ready):
    apps, policy = pdb_protected_app()
    try:
        first_pod = wait_for(lambda: app_pods(ready_only=True), timeout=90, what="pdb-app Ready")[0].metadata.name
        uid = api().read_node(WORKER).metadata.uid
        stopped = playbook("stop-cluster.yml")
        assert stopped.rc == 0, stopped
        assert api().read_node(WORKER).spec.unschedulable
        # Evicted, not left running: its replacement waits, unschedulable, until start-cluster uncordons the worker.
        assert first_pod not in [p.metadata.name for p in app_pods()]
        for name in (CONTROL, WORKER):
            assert node(name, "systemctl is-active kubelet", check=False).stdout.strip() == "inactive"
        record_time("stop-cluster.yml", stopped.seconds)
        run = repair("start after stop-cluster.yml")
        assert decisions(run.output) == {CONTROL: ["restart_kubelet"], WORKER: ["restart_kubelet"]}, run
        assert api().read_node(WORKER).metadata.uid == uid
        assert not api().read_node(WORKER).spec.unschedulable
        # The workload comes back on the worker once it is schedulable again.
        back = wait_for(lambda: app_pods(ready_only=True), timeout=120, what="pdb-app Ready again")
        assert back[0].spec.node_name == WORKER
    finally:
        apps.delete_namespaced_deployment("pdb-app", "default")
        policy.delete_namespaced_pod_disruption_budget("pdb-app", "default")
        wait_for(lambda: not app_pods(), timeout=60, what="pdb-app pods gone")


@pytest.mark.parametrize("extra", [[], ["-e", "reset_node_confirm=spark-2959"], ["-e", "reset_node_confirm=nobody"]],
                         ids=["no confirmation", "control plane without the second confirmation", "unknown node"])
def test_reset_node_refused_without_confirmation(lab_ready, extra):
    before = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout
    run = playbook("reset-node.yml", *extra)
    assert run.rc != 0, run
    assert "Refused, nothing was changed" in run.output
    assert node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf").stdout == before
    healthy()
