"""The NCCL launch path on the lab: every rank on its own node, every variable on every rank.

Reads the parsed JSON that the nccl role saved on the controller (DGX_SPARK_RESULTS_DIR), from the run made
with the LAB STAND-IN binary (tests/lab/nccl-standin), which reports per rank the environment it received.
"""

import glob
import json
import os

testinfra_hosts = ["localhost"]

EXPECTED = {
    "NCCL_IB_HCA": "rocep1s0f1,roceP2p1s0f1",
    "NCCL_IB_GID_INDEX": "3",
    "NCCL_SOCKET_IFNAME": "enp1s0f1np1,enP2p1s0f1np1",
    "NCCL_CROSS_NIC": "1",
    "NCCL_IB_MERGE_NICS": "1",
}


def latest_result():
    files = sorted(glob.glob(os.path.join(os.environ["DGX_SPARK_RESULTS_DIR"], "*-all_reduce_perf.json")))
    assert files, "no saved result"
    with open(files[-1]) as handle:
        return json.load(handle), files[-1]


def test_raw_output_saved_beside_the_json():
    unused_result, path = latest_result()
    assert os.path.exists(path[:-len(".json")] + ".log")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_one_rank_on_each_node():
    result, unused_path = latest_result()
    hosts = sorted(rank["host"] for rank in result["rank_env"])
    assert hosts == ["spark-2959", "spark-ba63"]


def test_every_variable_reached_the_remote_rank():
    result, unused_path = latest_result()
    remote = [rank for rank in result["rank_env"] if rank["host"] == "spark-ba63"][0]
    for name, value in EXPECTED.items():
        assert remote["env"].get(name) == value, (name, remote)


def test_recorded_output_parsed_and_judged():
    result, unused_path = latest_result()
    assert result["passed"] is True
    assert abs(result["avg_busbw_gbs"] - 21.4033) < 0.001
    assert result["cmd"][0].endswith("mpirun")
    assert all(v not in " ".join(result["cmd"]) for v in ("rocep1s0f1,roceP2p1s0f1",))
