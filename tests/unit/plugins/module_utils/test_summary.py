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
