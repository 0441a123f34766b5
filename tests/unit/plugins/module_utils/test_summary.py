"""The end-of-run summary: lines per Node, GPU warnings, and which Nodes were cordoned by us."""

from ansible_collections.dgx_spark.cluster.plugins.module_utils import summary


def node(name, ready="True", gpus=None, unschedulable=False, annotations=None, kubelet="v1.31.4"):
    item = {"metadata": {"name": name}, "spec": {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}],
                       "nodeInfo": {"kubeletVersion": kubelet}, "allocatable": {"cpu": "20"}}}
    if ready is not None:
        item["status"]["conditions"].append({"type": "Ready", "status": ready})
    if gpus is not None:
        item["status"]["allocatable"]["nvidia.com/gpu"] = str(gpus)
    if unschedulable:
        item["spec"]["unschedulable"] = True
    if annotations:
        item["metadata"]["annotations"] = annotations
    return item


def test_one_line_per_node_sorted_with_state():
    nodes = [node("spark-ba63", ready="Unknown", unschedulable=True), node("spark-2959", gpus=1)]
    result = summary.node_summary(nodes, {"spark-2959": 1, "spark-ba63": 0})
    assert result["lines"] == [
        "spark-2959: Ready=True, kubelet v1.31.4, GPUs allocatable 1",
        "spark-ba63: Ready=Unknown, kubelet v1.31.4, GPUs allocatable 0, cordoned",
    ]
    assert result["warnings"] == []


def test_missing_gpu_is_a_warning_naming_the_node_and_counts():
    result = summary.node_summary([node("spark-2959", gpus=0), node("spark-ba63")], {"spark-2959": 1, "spark-ba63": "1"})
    assert result["warnings"] == [
        "spark-2959 has 0 of 1 expected GPUs allocatable (GPU Operator not ready yet?); the cluster itself is up",
        "spark-ba63 has 0 of 1 expected GPUs allocatable (GPU Operator not ready yet?); the cluster itself is up",
    ]


def test_uncordoned_now_replaces_cordoned_and_no_ready_condition_is_unknown():
    nodes = [node("spark-ba63", ready=None, unschedulable=True)]
    assert summary.node_summary(nodes, {}, ["spark-ba63"])["lines"] == [
        "spark-ba63: Ready=Unknown, kubelet v1.31.4, GPUs allocatable 0, uncordoned now"]


def test_only_nodes_we_cordoned_are_uncordoned():
    nodes = [node("a", unschedulable=True, annotations={"dgx-spark.cluster/cordoned-by": "stop-cluster"}),
             node("b", unschedulable=True),  # cordoned by an operator on purpose: left alone
             node("c", annotations={"other": "x"})]
    assert summary.cordoned_by_us(nodes) == ["a"]
    assert summary.cordoned_by_us(None) == []


def test_empty_inputs():
    assert summary.node_summary(None) == {"lines": [], "warnings": []}


def test_not_ready_names_each_node_with_its_condition_and_what_the_run_tried():
    nodes = [
        {"metadata": {"name": "spark-2959"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "spark-ba63"}, "status": {"conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
             "message": "Kubelet stopped posting node status.", "lastTransitionTime": "2026-11-30T00:40:00Z"}]}},
    ]
    attempts = {"spark-ba63": ["restart_kubelet because Node spark-ba63 has been Ready=Unknown for 95s"]}
    found = summary.not_ready(nodes, ["spark-2959", "spark-ba63"], attempts)
    assert found == [{"name": "spark-ba63", "line": (
        "spark-ba63: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.) since "
        "2026-11-30T00:40:00Z; this run: restart_kubelet because Node spark-ba63 has been Ready=Unknown for 95s")}]


def test_not_ready_counts_a_missing_node_and_one_without_a_ready_condition():
    nodes = [{"metadata": {"name": "spark-2959"}, "status": {}}]
    found = summary.not_ready(nodes, ["spark-2959", "spark-ba63"])
    assert [f["line"] for f in found] == [
        "spark-2959: Ready=absent; this run: nothing (its plan was none)",
        "spark-ba63: no Node in the API; this run: nothing (its plan was none)",
    ]
    # Nodes outside the inventory are not judged; every inventory node Ready is an empty list.
    ready = [{"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}]
    assert summary.not_ready(ready, []) == []


def test_membership_attempts_skips_plans_that_did_not_run_or_planned_nothing():
    host_vars = {
        "worker_plan": {"action": "restart_kubelet", "reasons": ["a", "b"], "changed": False},
        "worker_escalation": {"action": "reset_and_join", "reasons": ["c"]},
        "control_plane_membership": {"skipped": True},
        "unrelated": {"action": "none", "reasons": ["ok"]},
    }
    keys = ["control_plane_membership", "worker_plan", "worker_escalation", "unrelated", "absent"]
    assert summary.membership_attempts(host_vars, keys) == [
        "restart_kubelet because a; b", "reset_and_join because c"]
    assert summary.membership_attempts({}, keys) == []


def test_any_value_of_the_annotation_is_ours_sleep_cluster_included():
    # sleep-cluster.yml marks its Nodes "sleep-cluster"; start-cluster (run by wake-cluster.yml) uncordons them too.
    nodes = [node("spark-2959", unschedulable=True, annotations={"dgx-spark.cluster/cordoned-by": "sleep-cluster"}),
             node("spark-ba63", unschedulable=True, annotations={"dgx-spark.cluster/cordoned-by": "stop-cluster"})]
    assert summary.cordoned_by_us(nodes) == ["spark-2959", "spark-ba63"]
