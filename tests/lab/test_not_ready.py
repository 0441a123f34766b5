"""A Node that is not Ready while its kubelet runs (issue 15), on the lab's real Kubernetes: start-cluster.yml
diagnoses it from what the Node, the kubelet and the node report, repairs it in a bounded order (restart the
kubelet, then re-join), or fails naming the cause; it never exits 0 with a Node not Ready.

Each fault leaves the kubelet service active. The lab shortens the grace (inventory/lab/hosts.yml:
worker_ready_grace 30 s, node-monitor grace 20 s), so each test first waits until the Node has been not Ready for
that long, as a user's Node would have been when they ran the playbook. Runs after test_repairs.py (which builds
the cluster) and leaves a healthy cluster behind.
"""

import time

from conftest import api, decisions, flat, node, node_ready, playbook, record_time, task_results, wait_for

WORKER, CONTROL = "spark-ba63", "spark-2959"
# inventory/lab/hosts.yml: worker_ready_grace, and the controller-manager's node-monitor-grace-period
READY_GRACE, MONITOR_GRACE = 30, 20


def kubelet_active(name):
    return node(name, "systemctl is-active kubelet", check=False).stdout.strip() == "active"


def not_ready_for_the_grace(name):
    """Wait until the Node has been not Ready for longer than worker_ready_grace (and its kubelet active as long)."""
    wait_for(lambda: node_ready(api(), name) in ("Unknown", "False"), timeout=MONITOR_GRACE * 4,
             what="%s not Ready" % name)
    time.sleep(READY_GRACE + 2)
    assert node_ready(api(), name) in ("Unknown", "False")
    assert kubelet_active(name)


def quiet_second_run():
    second = playbook("start-cluster.yml")
    assert second.rc == 0 and second.changed == 0, second
    return second


def test_frozen_kubelet_is_restarted(lab_ready):
    # The kubelet process hangs (SIGSTOP): systemd still says active, the Node goes Unknown.
    node(WORKER, "systemctl kill --kill-whom=main --signal=SIGSTOP kubelet")
    not_ready_for_the_grace(WORKER)
    check = playbook("start-cluster.yml", "--check")
    assert check.rc == 0 and decisions(check.output) == {WORKER: ["restart_kubelet"]}, check
    assert "the next step is a re-join" in flat(check.output), check
    run = playbook("start-cluster.yml")
    assert run.rc == 0, run
    assert decisions(run.output) == {WORKER: ["restart_kubelet"]}, run
    assert "has been Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)" in flat(run.output), run
    assert task_results(run.output, "Worker | Restart the kubelet") == ["changed"], run
    assert node_ready(api(), WORKER) == "True"
    record_time("NotReady 1: frozen kubelet (restart)", run.seconds)
    quiet_second_run()


def test_kubelet_with_rejected_credentials_is_re_joined(lab_ready):
    # The kubelet's client certificate is replaced by one the cluster never issued (same node name, another CA): the
    # API answers 401, the Node goes Unknown. A restart cannot fix credentials; the re-join gives new ones.
    node(WORKER, "set -e; d=$(mktemp -d); cd $d;"
                 " openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=not-the-cluster-ca"
                 " -days 1 2>/dev/null;"
                 " openssl req -newkey rsa:2048 -nodes -keyout k.key -out k.csr"
                 " -subj /O=system:nodes/CN=system:node:%s 2>/dev/null;"
                 " openssl x509 -req -in k.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out k.crt -days 1 2>/dev/null;"
                 " cat k.crt k.key > /var/lib/kubelet/pki/kubelet-client-current.pem; rm -rf $d;"
                 " systemctl restart kubelet" % WORKER)
    uid = api().read_node(WORKER).metadata.uid
    not_ready_for_the_grace(WORKER)
    # The real kubelet says why (among its other errors: a worker's kubelet also logs its missing manifests path).
    journal = node(WORKER, "journalctl -u kubelet --since -60s -o cat --no-pager | grep '^E' | grep Unauthorized"
                           " | tail -n 3", check=False).stdout
    assert "Unauthorized" in journal, journal
    run = playbook("start-cluster.yml")
    assert run.rc == 0, run
    assert decisions(run.output) == {WORKER: ["restart_kubelet", "reset_and_join"]}, run
    assert "Unauthorized" in run.output  # the diagnosis quotes the kubelet's own error
    assert api().read_node(WORKER).metadata.uid != uid
    assert node_ready(api(), WORKER) == "True"
    record_time("NotReady 2: kubelet credentials rejected (restart, then re-join)", run.seconds)
    quiet_second_run()


def test_api_unreachable_from_the_worker_fails_naming_the_cause(lab_ready):
    # The worker cannot reach the API port at all (a firewall rule): nothing this collection does on the node can fix
    # it, so the run must fail, say why, and change nothing on the worker.
    rule = "OUTPUT -p tcp -d 10.10.10.1 --dport 6443 -j REJECT --reject-with tcp-reset"
    node(WORKER, "iptables -I " + rule)
    try:
        not_ready_for_the_grace(WORKER)
        before = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf; systemctl show -p ActiveEnterTimestamp kubelet").stdout
        run = playbook("start-cluster.yml")
        assert run.rc != 0, run
        assert "this node cannot reach the API at 10.10.10.1:6443" in flat(run.output), run
        assert "Neither a kubelet restart nor a re-join can fix that" in flat(run.output), run
        assert run.recap[WORKER]["changed"] == 0, run
        after = node(WORKER, "stat -c %Y /etc/kubernetes/kubelet.conf; systemctl show -p ActiveEnterTimestamp kubelet").stdout
        assert after == before
        record_time("NotReady 3: API unreachable from the worker (fails, nothing changed)", run.seconds)
    finally:
        node(WORKER, "iptables -D " + rule, check=False)
    wait_for(lambda: node_ready(api(), WORKER) == "True", timeout=90, what="worker Ready once the rule is gone")
    quiet_second_run()
