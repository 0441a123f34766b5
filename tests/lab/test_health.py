"""check-cluster.yml on the lab's real cluster (issue 14, health report): read-only, in --check too, a table and a
JSON report, and scripts/check-cluster.sh's exit codes. The lab cluster is real; what it cannot have (GPUs) is what
makes a healthy lab report "degraded". Runs after test_repairs.py (which builds the cluster) and leaves a healthy
cluster behind.
"""

from conftest import api, check_cluster, node, node_ready, ping_seconds, playbook, record_time, wait_for

WORKER = "spark-ba63"


def severities(data, area=None):
    return {(f["area"], f["subject"]): f["severity"] for f in data["findings"] if area in (None, f["area"])}


def test_a_healthy_lab_is_degraded_only_by_its_missing_gpus(tmp_path):
    result, data, seconds = check_cluster(tmp_path)
    output = result.stdout + result.stderr
    assert data is not None, output
    assert data["status"] == "degraded", output
    assert result.returncode == 1, output
    degraded = [f for f in data["findings"] if f["severity"] in ("degraded", "failed")]
    # The lab's nodes expect one GPU each (spark_gpu_count) and have none: that, and only that, is degraded.
    assert {(f["area"], f["subject"]) for f in degraded} == {("nodes", "spark-2959"), ("nodes", "spark-ba63")}, degraded
    assert all("GPUs allocatable 0 of 1 expected" in f["message"] for f in degraded), degraded
    # The API and etcd were judged ok from the real cluster, not left unchecked.
    assert set(severities(data, "api").values()) == {"ok"}, data["findings"]
    assert set(severities(data, "etcd").values()) == {"ok"}, data["findings"]
    assert "changed=0" in output and "failed=0" in output, output
    record_time("check-cluster.yml on a healthy lab (degraded: no GPUs)", seconds)
    floor = ping_seconds()
    record_time("ansible all -m ping (the floor check-cluster.yml is measured against)", floor)
    print("check-cluster.yml %.1f s, ping %.1f s: %.1fx" % (seconds, floor, seconds / floor))


def test_check_mode_gives_the_same_report(tmp_path):
    result, data, dummy = check_cluster(tmp_path, "--check")
    assert data is not None and data["status"] == "degraded", result.stdout + result.stderr
    assert result.returncode == 1


def test_a_stopped_worker_kubelet_makes_the_report_failed_naming_the_node(tmp_path):
    node(WORKER, "systemctl stop kubelet")
    try:
        wait_for(lambda: node_ready(api(), WORKER) in ("Unknown", "False"), timeout=90, what="worker not Ready")
        result, data, seconds = check_cluster(tmp_path)
        output = result.stdout + result.stderr
        assert data is not None and data["status"] == "failed", output
        assert result.returncode == 2, output
        failed = [f for f in data["findings"] if f["severity"] == "failed"]
        assert any(f["subject"] == WORKER for f in failed), failed
        assert "cluster health is FAILED" in output and WORKER in output, output
        record_time("check-cluster.yml with the worker's kubelet stopped (failed)", seconds)
    finally:
        run = playbook("start-cluster.yml")
        assert run.rc == 0, run
        wait_for(lambda: node_ready(api(), WORKER) == "True", timeout=120, what="worker Ready again")
