# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nccl_test core against every nccl-tests sample in tests/unit/fixtures/nccl-tests.

Real captures (headers say where from): spark-fb97-* (two DGX Sparks), gb10-promax-* (two Dell GB10),
legacy-format-* (DGX-1 / DGX A100, old 'error' column). Constructed ones are labelled '#@ constructed:'.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import nccl
from ansible_collections.dgx_spark.cluster.plugins.module_utils.nccl import (
    GIB,
    MIB,
    NcclInputError,
    build_mpirun_argv,
    check_sizes,
    classify_exit,
    format_size,
    forwarded_names,
    judge,
    merge_env,
    nccl_version_from_code,
    parse_nvidia_smi_list,
    parse_output,
    parse_size,
    plan_env,
    rsh_agent,
    size_sweep,
    summary_lines,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "nccl-tests")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def run(name, **kwargs):
    parsed = parse_output(fixture(name))
    return parsed, judge(parsed, **kwargs)


ALL_FIXTURES = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".txt"))


# --------------------------------------------------------------------------------------------------------
# every fixture keeps a provenance header


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_has_provenance(name):
    first = fixture(name).splitlines()[0]
    assert first.startswith("#@ "), name
    if name.startswith(("constructed-", "truncated-")):
        assert "#@ constructed:" in fixture(name)


# --------------------------------------------------------------------------------------------------------
# real two-Spark runs


def test_spark_switch_healthy_all_gather():
    parsed, verdict = run("spark-fb97-all_gather-1G-4G-switch-21.40.txt", expected_ranks=2, expected_hosts=2)
    assert parsed["nccl_tests_version"] == "2.18.3"
    assert parsed["nccl_headers"] == 22809 and parsed["nccl_library"] == 22809
    assert parsed["nccl_version"] == "2.28.9"
    assert parsed["collective"] == "all_gather_perf" and parsed["concluded"] is True
    assert parsed["config"]["min_bytes"] == GIB and parsed["config"]["max_bytes"] == 4 * GIB
    assert parsed["config"]["iters"] == 50 and parsed["config"]["warmup_iters"] == 10
    assert parsed["config"]["agg_iters"] == 1 and parsed["config"]["step_kind"] == "factor"
    assert [r["host"] for r in parsed["ranks"]] == ["spark-fb97", "spark-4440"]
    assert parsed["ranks"][1] == {
        "rank": 1, "group": 0, "pid": 546336, "host": "spark-4440", "device": 0,
        "bus_id": "000f:01:00", "device_name": "NVIDIA GB10",
    }
    assert parsed["format"] == "current"
    assert [r["size"] for r in parsed["rows"]] == [GIB, 2 * GIB, 4 * GIB]
    first = parsed["rows"][0]
    assert first["count"] == 134217728 and first["type"] == "float" and first["redop"] == "none"
    assert first["root"] == -1
    assert first["out_of_place"] == {"time_us": 27211.0, "algbw_gbs": 39.46, "busbw_gbs": 19.73, "wrong": 0}
    assert first["in_place"] == {"time_us": 25806.7, "algbw_gbs": 41.61, "busbw_gbs": 20.80, "wrong": 0}
    assert parsed["out_of_bounds"] == 0 and parsed["out_of_bounds_status"] == "OK"
    assert parsed["avg_busbw_gbs"] == pytest.approx(21.4033)
    assert parsed["warnings"] == [] and parsed["errors"] == [] and parsed["unparsed_rows"] == []
    assert verdict["passed"] is True and verdict["failures"] == []
    assert verdict["line_rate_ratio"] == pytest.approx(0.8561, abs=1e-4)
    # passes the 20 GB/s minimum but is below NVIDIA's 21.875 GB/s warning line
    assert any("21.875" in note for note in verdict["notes"])
    assert [s["verdict"] for s in verdict["per_size"]] == ["ok", "ok", "ok"]


def test_spark_degraded_fails_on_bandwidth_only():
    parsed, verdict = run("spark-fb97-all_gather-1G-4G-degraded-2.82.txt", expected_ranks=2, expected_hosts=2)
    assert parsed["avg_busbw_gbs"] == pytest.approx(2.82151)
    assert parsed["out_of_bounds"] == 0
    assert len(parsed["rows"]) == 3 and all(nccl.row_wrong(r) == 0 for r in parsed["rows"])
    # the six X11 'Authorization required' lines before the header are neither errors nor warnings
    assert parsed["errors"] == [] and parsed["warnings"] == []
    assert verdict["passed"] is False
    assert verdict["failures"] == [
        "average bus bandwidth 2.82 GB/s is below the minimum 20.00 GB/s (11.3% of the 25.00 GB/s line rate)"
    ]
    assert [s["verdict"] for s in verdict["per_size"]] == ["below", "below", "below"]


def test_gb10_single_size_16g_all_gather():
    parsed, verdict = run("gb10-promax-all_gather-16G-single-size.txt", expected_ranks=2, expected_hosts=2)
    assert parsed["nccl_tests_version"] == "2.18.5"
    assert [r["host"] for r in parsed["ranks"]] == ["promaxgb10-4c75", "promaxgb10-4c99"]
    assert len(parsed["rows"]) == 1 and parsed["rows"][0]["size"] == 16 * GIB
    assert parsed["rows"][0]["in_place"]["busbw_gbs"] == 22.98
    assert parsed["avg_busbw_gbs"] == pytest.approx(22.9611)
    assert verdict["passed"] is True
    assert not any("21.875" in note for note in verdict["notes"])


def test_stricter_threshold_fails_the_healthy_run_with_its_value():
    verdict = run("spark-fb97-all_gather-1G-4G-switch-21.40.txt", min_avg_busbw_gbs=21.875)[1]
    assert verdict["failures"] == [
        "average bus bandwidth 21.40 GB/s is below the minimum 21.875 GB/s (85.6% of the 25.00 GB/s line rate)"
    ]


# --------------------------------------------------------------------------------------------------------
# legacy format (no root column, 'error' instead of '#wrong')


def test_legacy_dgx1_format():
    parsed, verdict = run("legacy-format-dgx1-k8s-sriov-roce-all_reduce-7.77.txt")
    assert parsed["format"] == "legacy"
    assert parsed["nccl_tests_version"] is None and parsed["nccl_version"] is None and parsed["ranks"] == []
    assert len(parsed["rows"]) == 29
    first = parsed["rows"][0]
    assert first["size"] == 8 and first["count"] == 2 and first["redop"] == "sum" and first["root"] is None
    assert first["out_of_place"] == {"time_us": 2193.5, "algbw_gbs": 0.0, "busbw_gbs": 0.0, "error": 2e-07,
                                     "wrong": None}
    assert parsed["rows"][-1]["size"] == 2 * GIB and parsed["rows"][-1]["in_place"]["busbw_gbs"] == 22.85
    assert parsed["avg_busbw_gbs"] == pytest.approx(7.76739)
    # the trailing ``` of the markdown source is ignored
    assert parsed["unparsed_rows"] == [] and parsed["errors"] == []
    assert verdict["passed"] is False
    assert verdict["failures"] == [
        "average bus bandwidth 7.77 GB/s is below the minimum 20.00 GB/s (31.1% of the 25.00 GB/s line rate)"
    ]
    assert any("legacy nccl-tests format" in note for note in verdict["notes"])


def test_legacy_dgxa100_passes_and_reports_ratio():
    parsed, verdict = run("legacy-format-dgxa100-k8s-all_reduce-53.71.txt")
    assert len(parsed["rows"]) == 30 and parsed["rows"][-1]["size"] == 4 * GIB
    assert parsed["rows"][-1]["out_of_place"]["busbw_gbs"] == 188.53
    assert verdict["passed"] is True
    assert verdict["line_rate_ratio"] == pytest.approx(53.7098 / 25.0, abs=1e-4)


def test_crlf_output_parses_like_lf():
    # The published DGX A100 output has CRLF line endings (the fixture stores LF, see its header).
    text = fixture("legacy-format-dgxa100-k8s-all_reduce-53.71.txt")
    crlf_parsed, crlf_verdict = run_text(text.replace("\n", "\r\n"))
    parsed, verdict = run_text(text)
    assert crlf_parsed["rows"] == parsed["rows"]
    assert crlf_parsed["avg_busbw_gbs"] == parsed["avg_busbw_gbs"] == pytest.approx(53.7098)
    assert crlf_verdict["passed"] is verdict["passed"] is True


# --------------------------------------------------------------------------------------------------------
# constructed cases (labelled in their headers)


def test_nccl_warn_lines_and_banner_are_collected_not_failed():
    parsed, verdict = run("constructed-spark-all_reduce-64M-512M-nccl-warn.txt", expected_ranks=2, expected_hosts=2)
    assert parsed["nccl_version"] == "2.28.9"
    assert parsed["nccl_version_banner"] == "2.28.9+cuda13.0"
    assert len(parsed["warnings"]) == 2
    assert parsed["warnings"][0].startswith("spark-ba63:39012:39055 [0] transport/net_ib.cc:1046 NCCL WARN")
    assert [r["size"] for r in parsed["rows"]] == [64 * MIB, 128 * MIB, 256 * MIB, 512 * MIB]
    assert verdict["passed"] is True
    assert any(note.startswith("2 NCCL WARN line(s)") for note in verdict["notes"])


def test_nccl_warn_lines_fail_when_asked():
    verdict = run("constructed-spark-all_reduce-64M-512M-nccl-warn.txt", fail_on_nccl_warnings=True)[1]
    assert verdict["passed"] is False
    assert verdict["failures"][0].startswith("2 NCCL WARN line(s), first: spark-ba63:39012:39055")


def test_wrong_values_and_out_of_bounds_fail_naming_sizes():
    parsed, verdict = run("constructed-spark-all_reduce-wrong-values-oob.txt")
    assert parsed["out_of_bounds"] == 2 and parsed["out_of_bounds_status"] == "FAILED"
    assert verdict["failures"] == [
        "wrong values in 2 size(s): 128 MiB (out-of-place 4096, in-place 0), 256 MiB (out-of-place 0, in-place 8)",
        "out-of-bounds values: 2 (nccl-tests result check FAILED)",
    ]
    assert [s["verdict"] for s in verdict["per_size"]] == ["ok", "WRONG", "WRONG", "ok"]


def test_in_place_wrong_na_is_not_a_failure():
    parsed, verdict = run("constructed-spark-all_gather-inplace-wrong-na.txt", min_avg_busbw_gbs=18.0)
    assert all(r["in_place"]["wrong"] is None for r in parsed["rows"])
    assert all(r["out_of_place"]["wrong"] == 0 for r in parsed["rows"])
    assert verdict["passed"] is True
    summary = summary_lines(parsed, verdict, "all_gather_perf", 18.0)
    assert summary[3].split()[-2:] == ["0", "below"]  # 64 MiB: oop wrong 0, busbw 10.84 < 18


def test_single_rank_run_fails_bandwidth_and_host_count():
    parsed, verdict = run("constructed-single-node-1rank-all_reduce.txt", expected_ranks=2, expected_hosts=2)
    assert len(parsed["ranks"]) == 1 and parsed["avg_busbw_gbs"] == 0.0
    assert parsed["rows"][0]["in_place"]["algbw_gbs"] == 163680.0
    assert verdict["failures"] == [
        "the output lists 1 rank(s), expected 2",
        "ranks ran on 1 host(s) (spark-2959), expected 2: the test did not cross between the nodes",
        "average bus bandwidth 0.00 GB/s is below the minimum 20.00 GB/s (0.0% of the 25.00 GB/s line rate)",
    ]


def test_single_rank_run_as_a_one_node_test_only_fails_bandwidth():
    verdict = run("constructed-single-node-1rank-all_reduce.txt", expected_ranks=1, expected_hosts=1)[1]
    assert len(verdict["failures"]) == 1 and verdict["failures"][0].startswith("average bus bandwidth 0.00")


def test_init_failure_reports_nccl_error_and_rc():
    parsed, verdict = run("constructed-spark-all_reduce-nccl-init-failure.txt", rc=3, expected_ranks=2)
    assert parsed["rows"] == [] and parsed["avg_busbw_gbs"] is None
    assert parsed["errors"][0].startswith("spark-2959: Test NCCL failure common.cu:1279 'unhandled system error")
    assert any(e.startswith("mpirun detected that one or more processes") for e in parsed["errors"])
    assert len(parsed["warnings"]) == 1
    assert verdict["failures"][:3] == [
        "mpirun exited with rc 3",
        "nccl-tests or mpirun reported an error: spark-2959: Test NCCL failure common.cu:1279 'unhandled system "
        "error (run with NCCL_DEBUG=INFO for details) / '",
        "no result rows in the output (nccl-tests did not get to the size sweep)",
    ]


def test_truncated_output_fails_clearly():
    parsed, verdict = run("truncated-spark-fb97-all_gather-switch.txt", expected_ranks=2, expected_hosts=2)
    assert len(parsed["rows"]) == 2
    assert parsed["unparsed_rows"] == ["4294967296     536870912     float    none      -1  96986.7   44.28   22.14"]
    assert parsed["avg_busbw_gbs"] is None and parsed["concluded"] is False
    assert verdict["passed"] is False
    assert verdict["failures"] == [
        "truncated output: no 'Avg bus bandwidth' line after 2 size rows (last size 2 GiB)"
    ]
    assert verdict["line_rate_ratio"] is None


def test_truncated_output_after_timeout():
    parsed, verdict = run("truncated-spark-fb97-all_gather-switch.txt", rc=124, outcome="timeout", timeout_s=300)
    assert verdict["failures"][0] == (
        "timed out after 300s: the whole mpirun launch was killed (2 size rows parsed before that)"
    )
    assert verdict["failures"][1].startswith("truncated output")


# --------------------------------------------------------------------------------------------------------
# output of the lab stand-in (captured under real Open MPI): real nccl-tests format, parsed like any other


def test_standin_output_parses_as_nccl_tests_output():
    parsed, verdict = run("standin-mpmd-pseudo-remote-2ranks.txt", expected_ranks=2, expected_hosts=1)
    assert [(r["rank"], r["host"]) for r in sorted(parsed["ranks"], key=lambda r: r["rank"])] == [(0, "vm"), (1, "vm")]
    assert parsed["avg_busbw_gbs"] == pytest.approx(21.4033) and len(parsed["rows"]) == 3
    assert parsed["errors"] == [] and parsed["warnings"] == [] and parsed["unparsed_rows"] == []
    assert verdict["passed"] is True and verdict["notes"] == [
        "average bus bandwidth 21.40 GB/s passes the 20.00 GB/s minimum but is below the 21.875 GB/s warning "
        "line NVIDIA uses for two Sparks"]
    # nothing about the stand-in is known to the parser: no keys beyond those of real nccl-tests output
    assert not [key for key in parsed if "standin" in key or key == "rank_env"]


# --------------------------------------------------------------------------------------------------------
# format variants seen in nccl-tests' source and public output (inline, constructed)


def test_tag_output_prefix_and_version_with_commit():
    text = (
        "[1,0]<stdout>:# nccl-tests version 2.20.0 (b4d5bee) nccl-headers=23102 nccl-library=23102\n"
        "[1,0]<stdout>:#       size         count      type   redop    root     time   algbw   busbw  #wrong"
        "     time   algbw   busbw  #wrong\n"
        "[1,0]<stdout>:        8192          2048     float     sum      -1    35.15    0.23    0.23       0"
        "    30.33    0.27    0.27       0\n"
        "[1,0]<stdout>:# Out of bounds values : 0 OK\n"
        "[1,0]<stdout>:# Avg bus bandwidth    : 0.25 \n"
    )
    parsed = parse_output(text)
    assert parsed["nccl_tests_version"] == "2.20.0" and parsed["nccl_tests_commit"] == "b4d5bee"
    assert parsed["nccl_version"] == "2.31.2"
    assert parsed["rows"][0]["size"] == 8192 and parsed["avg_busbw_gbs"] == 0.25


def test_old_rank_line_and_broadcast_legacy_layout():
    text = (
        "#   Rank  0 Pid  14926 on gpu-node-1 device  0 [0x00] Tesla V100-PCIE-16GB\n"
        "#       size         count    type    root     time   algbw   busbw  error     time   algbw   busbw  error\n"
        "           8             2   float       0    45.82    0.00    0.00    N/A    38.17    0.00    0.00    N/A\n"
        "# Avg bus bandwidth    : 0 FAILED\n"
    )
    parsed = parse_output(text)
    assert parsed["ranks"][0]["group"] is None and parsed["ranks"][0]["host"] == "gpu-node-1"
    assert parsed["format"] == "legacy"
    assert parsed["rows"][0]["root"] == 0 and parsed["rows"][0]["redop"] is None
    assert parsed["rows"][0]["in_place"]["error"] is None
    assert parsed["avg_busbw_status"] == "FAILED"


def test_timestamp_and_exponent_columns():
    text = (
        "#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw"
        "   busbw  #wrong timestamp\n"
        "  8589934592    2147483648     float     sum      -1  1.2e+06    7.16    7.16  1.2e+06  1.2e+06"
        "    7.16    7.16       0 2026-08-01 12:00:00\n"
    )
    row = parse_output(text)["rows"][0]
    assert row["out_of_place"]["time_us"] == 1.2e6 and row["out_of_place"]["wrong"] == 1200000
    assert row["timestamp"] == "2026-08-01 12:00:00"


def test_row_without_header_uses_current_layout():
    parsed = parse_output("  1073741824     134217728     float    none      -1  27211.0   39.46   19.73"
                          "       0  25806.7   41.61   20.80       0\n")
    assert parsed["rows"][0]["in_place"]["busbw_gbs"] == 20.80 and parsed["format"] == "current"


def test_hash_error_line_and_stderr_messages():
    parsed = parse_output("# error: unhandled system error\n", stderr=(
        "ssh: connect to host 10.10.10.2 port 22: No route to host\n"
        "node-a:1:1 [0] NCCL WARN something odd\n"))
    assert parsed["errors"] == ["# error: unhandled system error",
                                "ssh: connect to host 10.10.10.2 port 22: No route to host"]
    assert parsed["warnings"] == ["node-a:1:1 [0] NCCL WARN something odd"]


def test_nccl_info_lines_are_not_errors():
    parsed = parse_output("h:1:1 [0] NCCL INFO NET/Plugin: Could not find: libnccl-net.so. No such file or directory\n")
    assert parsed["errors"] == [] and parsed["warnings"] == []


def test_empty_output():
    verdict = run_text("")[1]
    assert verdict["failures"] == ["no result rows in the output (nccl-tests did not get to the size sweep)"]


def run_text(text, **kwargs):
    parsed = parse_output(text)
    return parsed, judge(parsed, **kwargs)


def test_killed_before_timeout_is_not_called_a_timeout():
    verdict = run_text("", rc=137, outcome="killed", timeout_s=300)[1]
    assert verdict["failures"][0] == "mpirun was killed (rc 137, SIGKILL before the timeout: out of memory?)"


# --------------------------------------------------------------------------------------------------------
# versions, sizes, env, argv


@pytest.mark.parametrize("code, version", [(22809, "2.28.9"), (23102, "2.31.2"), (21805, "2.18.5"), (2708, "2.7.8"),
                                           (None, None)])
def test_nccl_version_from_code(code, version):
    assert nccl_version_from_code(code) == version


@pytest.mark.parametrize("value, expected", [
    (8, 8), ("8", 8), ("64M", 64 * MIB), ("64m", 64 * MIB), ("512M", 512 * MIB), ("1G", GIB), (" 4 G ", 4 * GIB),
    ("16GiB", 16 * GIB), ("2KB", 2048), ("1T", 1024 * GIB), (67108864, 64 * MIB),
])
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["1.5G", "-1", "0", "G", "64X", "", True, "1 0M"])
def test_parse_size_rejects(value):
    with pytest.raises(NcclInputError):
        parse_size(value, "max_bytes")


def test_format_size():
    assert format_size(64 * MIB) == "64 MiB" and format_size(1536) == "1.5 KiB" and format_size(8) == "8 B"
    assert format_size(16 * GIB) == "16 GiB"


def test_memory_cap():
    assert check_sizes(64 * MIB, 512 * MIB, 2) == []
    assert check_sizes(8 * GIB, 8 * GIB, 2) == []  # the cap itself is allowed
    problems = check_sizes(16 * GIB, 16 * GIB, 2)
    assert len(problems) == 1
    assert problems[0].startswith("max_bytes 16 GiB (17179869184 bytes) is above the memory-safe cap of 8 GiB")
    assert "allow_large_sizes: true" in problems[0]
    assert check_sizes(16 * GIB, 16 * GIB, 2, allow_large_sizes=True) == []
    assert check_sizes(8 * GIB + 1, 8 * GIB + 1, 2)  # one byte over is refused
    assert check_sizes(GIB, MIB, 2) == ["min_bytes (1 GiB) is larger than max_bytes (1 MiB)"]
    assert check_sizes(MIB, GIB, 1) == ["step_factor must be 2 or more, got 1"]


def test_size_sweep_default():
    assert size_sweep(64 * MIB, 512 * MIB, 2) == [64 * MIB, 128 * MIB, 256 * MIB, 512 * MIB]
    assert size_sweep(GIB, 4 * GIB, 2) == [GIB, 2 * GIB, 4 * GIB]


def test_merge_env_user_wins_and_null_removes():
    roce = {"NCCL_IB_HCA": "rocep1s0f0,roceP2p1s0f0", "NCCL_IB_GID_INDEX": 3, "NCCL_SOCKET_IFNAME": "enp1s0f0np0"}
    user = {"NCCL_IB_GID_INDEX": "2", "NCCL_SOCKET_IFNAME": None, "NCCL_IB_MERGE_NICS": True, "UCX_NET_DEVICES": "x"}
    assert merge_env(roce, user) == {
        "NCCL_IB_HCA": "rocep1s0f0,roceP2p1s0f0", "NCCL_IB_GID_INDEX": "2", "NCCL_IB_MERGE_NICS": "1",
        "UCX_NET_DEVICES": "x",
    }
    with pytest.raises(NcclInputError):
        merge_env({}, {"BAD NAME": "1"})


def test_forwarded_names_skip_mpirun_own_variables():
    env = {"NCCL_IB_HCA": "a", "UCX_TLS": "rc", "LD_LIBRARY_PATH": "/x", "PATH": "/y", "CUDA_VISIBLE_DEVICES": "0",
           "OMPI_MCA_btl": "tcp", "PMIX_MCA_x": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1"}
    assert forwarded_names(env) == ["CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "NCCL_IB_HCA", "PATH", "UCX_TLS"]


def test_rsh_agent():
    assert rsh_agent() == "ssh -o BatchMode=yes"
    assert rsh_agent("nvidia", ["-o StrictHostKeyChecking=accept-new", "-p 2222"]) == (
        "ssh -o BatchMode=yes -l nvidia -o StrictHostKeyChecking=accept-new -p 2222")
    with pytest.raises(NcclInputError):
        rsh_agent(None, ["-i '/path with space/key'"])


def test_build_mpirun_argv_full():
    argv = build_mpirun_argv(
        "/usr/bin/mpirun", "/opt/nccl-tests/build/all_reduce_perf", ["10.10.10.1", "10.10.10.2"], 1,
        ["NCCL_IB_GID_INDEX", "NCCL_IB_HCA"], "enp1s0f0np0", "nvidia", ["-o StrictHostKeyChecking=accept-new"],
        64 * MIB, 512 * MIB, 2, 20, 5, ["--bind-to none"], ["-d bfloat16"], allow_run_as_root=True,
    )
    assert argv == [
        "/usr/bin/mpirun", "--allow-run-as-root", "-np", "2", "-H", "10.10.10.1:1,10.10.10.2:1",
        "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "enp1s0f0np0",
        "--mca", "oob_tcp_if_include", "enp1s0f0np0",
        "--mca", "plm_rsh_agent", "ssh -o BatchMode=yes -l nvidia -o StrictHostKeyChecking=accept-new",
        "-x", "NCCL_IB_GID_INDEX", "-x", "NCCL_IB_HCA", "--bind-to", "none",
        "/opt/nccl-tests/build/all_reduce_perf", "-b", "67108864", "-e", "536870912", "-f", "2", "-g", "1",
        "-n", "20", "-w", "5", "-c", "1", "-d", "bfloat16",
    ]


ROCE_2959 = {"NCCL_IB_HCA": "=roceP2p1s0f1,rocep1s0f1", "NCCL_IB_GID_INDEX": "3",
             "NCCL_SOCKET_IFNAME": "=enP2p1s0f1np1,enp1s0f1np1"}
ROCE_BA63 = {"NCCL_IB_HCA": "=mlx5_1,mlx5_3", "NCCL_IB_GID_INDEX": "5", "NCCL_SOCKET_IFNAME": "=enp1s0f1np1"}


def test_plan_env_each_host_keeps_its_own_roce_values():
    common, per_host = plan_env(
        ["10.10.10.1", "10.10.10.2"],
        nccl_env={"NCCL_DEBUG": "WARN", "NCCL_IB_GID_INDEX": "7"},
        env={"LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "NCCL_TEST_TOKEN": "secret"},
        host_env={"10.10.10.1": ROCE_2959, "10.10.10.2": ROCE_BA63},
    )
    # per-host names never go through mpirun's environment (the launcher's local ranks would inherit them)
    assert common == {"NCCL_DEBUG": "WARN", "LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "NCCL_TEST_TOKEN": "secret"}
    assert per_host == {"10.10.10.1": ROCE_2959, "10.10.10.2": ROCE_BA63}


def test_plan_env_layers_user_env_wins_and_nulls_remove():
    common, per_host = plan_env(
        ["a", "b", "c"],
        nccl_env={"NCCL_IB_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "=eth0"},
        env={"NCCL_SOCKET_IFNAME": "=bond0", "NCCL_IB_HCA": None},
        host_env={"a": {"NCCL_IB_GID_INDEX": 5, "NCCL_IB_HCA": "=mlx5_0", "NCCL_SOCKET_IFNAME": "=x"},
                  "b": {"NCCL_IB_GID_INDEX": None}},
    )
    # env wins on every host (and stays common: by name); a null in env removes everywhere
    assert common == {"NCCL_SOCKET_IFNAME": "=bond0"}
    # a host without its own value falls back to nccl_env; a null in host_env removes it for that host only
    assert per_host == {"a": {"NCCL_IB_GID_INDEX": "5"}, "b": {}, "c": {"NCCL_IB_GID_INDEX": "3"}}


def test_plan_env_without_host_env_is_merge_env():
    roce = {"NCCL_IB_HCA": "=rocep1s0f0", "NCCL_IB_GID_INDEX": 3}
    assert plan_env(["a", "b"], roce, {"NCCL_IB_GID_INDEX": None}) == ({"NCCL_IB_HCA": "=rocep1s0f0"}, {})


@pytest.mark.parametrize("host_env, message", [
    ({"10.10.10.9": {"NCCL_IB_GID_INDEX": "3"}}, "host_env: '10.10.10.9' is not one of hosts (10.10.10.1, 10.10.10.2)"),
    ({"10.10.10.1": {"OMPI_MCA_btl": "tcp"}},
     "host_env[10.10.10.1]: OMPI_MCA_btl configures mpirun itself and cannot differ per host (set it in env)"),
    ({"10.10.10.1": {"BAD NAME": "1"}}, "host_env[10.10.10.1]: environment variable name 'BAD NAME' is not valid"),
    ({"10.10.10.1": {"NCCL_IB_HCA": "a\nb"}}, "host_env[10.10.10.1]: the value of NCCL_IB_HCA holds a control character"),
    ({"10.10.10.1": ["NCCL_IB_HCA"]}, "host_env[10.10.10.1]: expected a dict of variables, got ['NCCL_IB_HCA']"),
])
def test_plan_env_refusals(host_env, message):
    with pytest.raises(NcclInputError) as caught:
        plan_env(["10.10.10.1", "10.10.10.2"], {}, {}, host_env)
    assert str(caught.value) == message


def test_build_mpirun_argv_one_app_context_per_host_with_its_own_values():
    """Each host's ranks get that host's GID index / HCA / netdevs: one OpenMPI app context per host. Checked
    with Open MPI 4.1.4: -x applies to its own app context only (a -x NAME of the first context does not reach
    the second), and -x NAME=value carries commas, '=' and spaces unchanged to a remote rank."""
    common, per_host = plan_env(["10.10.10.1", "10.10.10.2"], {}, {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64"},
                                {"10.10.10.1": ROCE_2959, "10.10.10.2": ROCE_BA63})
    argv = build_mpirun_argv(
        "/usr/bin/mpirun", "/opt/nccl-tests/build/all_reduce_perf", ["10.10.10.1", "10.10.10.2"], 1,
        forwarded_names(common), "enp1s0f0np0", None, ["-i", "~/.ssh/id_mpi"], 64 * MIB, 512 * MIB, 2, 20, 5,
        ["--bind-to none"], ["-d bfloat16"], allow_run_as_root=True, host_env=per_host,
    )
    program = ["/opt/nccl-tests/build/all_reduce_perf", "-b", "67108864", "-e", "536870912", "-f", "2", "-g", "1",
               "-n", "20", "-w", "5", "-c", "1", "-d", "bfloat16"]
    assert argv == [
        "/usr/bin/mpirun", "--allow-run-as-root",
        "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "enp1s0f0np0",
        "--mca", "oob_tcp_if_include", "enp1s0f0np0",
        "--mca", "plm_rsh_agent", "ssh -o BatchMode=yes -i ~/.ssh/id_mpi",
        "-np", "1", "-H", "10.10.10.1:1", "-x", "LD_LIBRARY_PATH", "--bind-to", "none",
        "-x", "NCCL_IB_GID_INDEX=3", "-x", "NCCL_IB_HCA==roceP2p1s0f1,rocep1s0f1",
        "-x", "NCCL_SOCKET_IFNAME==enP2p1s0f1np1,enp1s0f1np1",
    ] + program + [
        ":", "-np", "1", "-H", "10.10.10.2:1", "-x", "LD_LIBRARY_PATH", "--bind-to", "none",
        "-x", "NCCL_IB_GID_INDEX=5", "-x", "NCCL_IB_HCA==mlx5_1,mlx5_3", "-x", "NCCL_SOCKET_IFNAME==enp1s0f1np1",
    ] + program


def test_build_mpirun_argv_per_host_multi_gpu_keeps_rank_order():
    argv = build_mpirun_argv("mpirun", "all_gather_perf", ["node-a", "node-b"], gpus_per_node=4,
                             host_env={"node-a": {"NCCL_IB_GID_INDEX": "3"}, "node-b": {}})
    assert argv == [
        "mpirun", "--mca", "plm_rsh_agent", "ssh -o BatchMode=yes",
        "-np", "4", "-H", "node-a:4", "-x", "NCCL_IB_GID_INDEX=3",
        "all_gather_perf", "-b", "67108864", "-e", "536870912", "-f", "2", "-g", "1", "-n", "20", "-w", "5", "-c", "1",
        ":", "-np", "4", "-H", "node-b:4",
        "all_gather_perf", "-b", "67108864", "-e", "536870912", "-f", "2", "-g", "1", "-n", "20", "-w", "5", "-c", "1",
    ]


def test_build_mpirun_argv_per_host_refuses_a_host_listed_twice():
    with pytest.raises(NcclInputError) as caught:
        build_mpirun_argv("mpirun", "all_reduce_perf", ["a", "a"], host_env={"a": {"NCCL_IB_GID_INDEX": "3"}})
    assert str(caught.value) == "hosts: a is listed twice; per-host variables need each host once"


def test_build_mpirun_argv_minimal_multi_gpu():
    argv = build_mpirun_argv("mpirun", "all_gather_perf", ["node-a", "node-b"], gpus_per_node=4)
    assert argv[:5] == ["mpirun", "-np", "8", "-H", "node-a:4,node-b:4"]
    assert "btl_tcp_if_include" not in argv and "-x" not in argv


@pytest.mark.parametrize("hosts", [[], ["a b"], ["a,b"], ["fe80::1"], [""]])
def test_build_mpirun_argv_bad_hosts(hosts):
    with pytest.raises(NcclInputError):
        build_mpirun_argv("mpirun", "all_reduce_perf", hosts)


@pytest.mark.parametrize("rc, elapsed, outcome", [(0, 1, "ok"), (1, 1, "failed"), (124, 300, "timeout"),
                                                  (137, 305, "timeout"), (137, 12, "killed")])
def test_classify_exit(rc, elapsed, outcome):
    assert classify_exit(rc, elapsed, 300) == outcome


def test_parse_nvidia_smi_list():
    text = ("GPU 0: NVIDIA GB10 (UUID: GPU-5d9a1c2e-0000-0000-0000-000000000000)\n"
            "  MIG 1g.10gb     Device  0: (UUID: MIG-x)\n"
            "No devices found\n")
    assert parse_nvidia_smi_list(text) == [
        {"index": 0, "name": "NVIDIA GB10", "uuid": "GPU-5d9a1c2e-0000-0000-0000-000000000000"}
    ]
    assert parse_nvidia_smi_list("No devices were found\n") == []


def test_parse_nvidia_smi_list_real_h200():
    # Real: `nvidia-smi -L` captured on the project's lent GPU machine (one H200, CUDA 13, 2026-11-28), where the
    # module's require_gpus check passed and gpus_per_node: 2 failed with "shows 1 GPU(s)".
    text = "GPU 0: NVIDIA H200 (UUID: GPU-93bdec8a-16e4-f54a-e37f-9c187ad1922e)\n"
    assert parse_nvidia_smi_list(text) == [
        {"index": 0, "name": "NVIDIA H200", "uuid": "GPU-93bdec8a-16e4-f54a-e37f-9c187ad1922e"}
    ]


def test_summary_lines_healthy_run():
    parsed, verdict = run("spark-fb97-all_gather-1G-4G-switch-21.40.txt")
    lines = summary_lines(parsed, verdict, "all_gather_perf")
    assert lines[0] == ("nccl_test all_gather_perf: PASSED  avg busbw 21.40 GB/s "
                        "(minimum 20.00, 85.6% of 25.00 GB/s line rate)")
    assert lines[1] == "ranks 2 on spark-fb97, spark-4440 | NCCL 2.28.9 | nccl-tests 2.18.3"
    assert lines[2].split() == ["size", "oop", "busbw", "ip", "busbw", "wrong", "verdict"]
    assert lines[3].split() == ["1", "GiB", "19.73", "20.80", "0", "ok"]
    assert lines[-2] == "out of bounds: 0 | NCCL warnings: 0"
    assert lines[-1].startswith("NOTE: average bus bandwidth 21.40 GB/s passes the 20.00 GB/s minimum but is below "
                                "the 21.875 GB/s warning line")
    assert len(lines) <= 24


def test_summary_lines_name_failures():
    parsed, verdict = run("spark-fb97-all_gather-1G-4G-degraded-2.82.txt")
    lines = summary_lines(parsed, verdict, "all_gather_perf")
    assert "FAILED" in lines[0]
    assert lines[-1].startswith("FAIL: average bus bandwidth 2.82 GB/s is below the minimum 20.00 GB/s")
