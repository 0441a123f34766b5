"""The NCCL launch path on the lab: every rank on its own node, each node's own values on its ranks, the common
variables on every rank.

Reads the parsed JSON that the nccl role saved on the controller (DGX_SPARK_RESULTS_DIR), from the run made
with the LAB STAND-IN binary (tests/lab/nccl-standin). The stand-in prints real nccl-tests output (its rank
lines carry each rank's node) plus '#' comment lines '# rank N on HOST env NAME=value' with the NCCL variables
each rank received; the collection knows nothing about them, this test reads them from the saved raw output.
"""

import glob
import json
import os

import yaml

testinfra_hosts = ["localhost"]

LAB_VARS = os.path.join(os.path.dirname(__file__), "..", "vars", "lab.yml")
COMMON = {"NCCL_CROSS_NIC": "1", "NCCL_IB_MERGE_NICS": "1"}


def per_node():
    with open(LAB_VARS) as handle:
        return yaml.safe_load(handle)["nccl_env_from_roce_by_host"]


def latest_result():
    files = sorted(glob.glob(os.path.join(os.environ["DGX_SPARK_RESULTS_DIR"], "*-all_reduce_perf.json")))
    assert files, "no saved result"
    with open(files[-1]) as handle:
        return json.load(handle), files[-1]


def env_by_rank(raw_output):
    """'# rank N on HOST env NAME=value' -> {N: (HOST, {NAME: value})}."""
    seen = {}
    for line in raw_output.splitlines():
        words = line.split(" ", 6)
        if len(words) == 7 and words[:2] == ["#", "rank"] and words[3] == "on" and words[5] == "env":
            name, unused, value = words[6].partition("=")
            seen.setdefault(int(words[2]), (words[4], {}))[1][name] = value
    return seen


def test_raw_output_saved_beside_the_json():
    unused_result, path = latest_result()
    assert os.path.exists(path[:-len(".json")] + ".log")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_one_rank_on_each_node():
    result, unused_path = latest_result()
    assert sorted((rank["rank"], rank["host"]) for rank in result["ranks"]) == [(0, "spark-2959"), (1, "spark-ba63")]


def test_the_two_nodes_have_different_values():
    nodes = per_node()
    assert nodes["spark-2959"]["NCCL_IB_GID_INDEX"] != nodes["spark-ba63"]["NCCL_IB_GID_INDEX"]


def test_each_rank_got_its_own_nodes_values_and_the_common_ones():
    result, unused_path = latest_result()
    ranks = env_by_rank(result["raw_output"])
    assert sorted(ranks) == [0, 1], result["raw_output"]
    nodes = per_node()
    for rank, (host, received) in ranks.items():
        assert received == dict(nodes[host], **COMMON), (rank, host, received)


def test_one_app_context_per_node_common_values_never_on_the_command_line():
    result, unused_path = latest_result()
    cmd = result["cmd"]
    assert cmd[0].endswith("mpirun") and cmd.count(":") == 1
    first, second = " ".join(cmd).split(" : ")
    assert "-x NCCL_IB_GID_INDEX=3" in first and "-x NCCL_IB_GID_INDEX=5" in second
    assert sorted(result["forwarded_env"]) == sorted(COMMON)
    assert "NCCL_CROSS_NIC=" not in " ".join(cmd)


def test_recorded_output_parsed_and_judged():
    result, unused_path = latest_result()
    assert result["passed"] is True
    assert abs(result["avg_busbw_gbs"] - 21.4033) < 0.001
