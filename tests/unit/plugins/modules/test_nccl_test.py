# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dgx_spark.cluster.nccl_test as a module: the exact mpirun argv, env forwarding (names on the command
line, values only in mpirun's environment), check mode running nothing, and the pass/fail paths, with
run_command patched and nccl-tests output taken from tests/unit/fixtures/nccl-tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import nccl_test

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "nccl-tests")
HEALTHY = "spark-fb97-all_gather-1G-4G-switch-21.40.txt"
DEGRADED = "spark-fb97-all_gather-1G-4G-degraded-2.82.txt"

ROCE_NCCL_ENV = {
    "NCCL_IB_HCA": "rocep1s0f0,roceP2p1s0f0",
    "NCCL_IB_GID_INDEX": "3",
    "NCCL_SOCKET_IFNAME": "enp1s0f0np0",
}


class Exit(Exception):
    def __init__(self, result, failed):
        super(Exit, self).__init__(result.get("msg"))
        self.result = result
        self.failed = failed


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def executable(path):
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A fake launcher node: mpirun and all_reduce_perf/all_gather_perf in tmp_path, nvidia-smi showing
    one GB10, not root. ``node.calls`` records (argv, environ_update) of every run_command."""

    class Node(object):
        calls = []
        warned = []
        mpirun_output = (fixture(HEALTHY), "")
        mpirun_rc = 0
        gpus = "GPU 0: NVIDIA GB10 (UUID: GPU-00000000-0000-0000-0000-000000000000)\n"
        bin_dir = str(tmp_path / "build")
        mpirun = None

    os.mkdir(Node.bin_dir)
    executable(tmp_path / "build" / "all_reduce_perf")
    executable(tmp_path / "build" / "all_gather_perf")
    Node.mpirun = executable(tmp_path / "mpirun")
    Node.calls = []
    Node.warned = []

    def run_command(self, args, check_rc=False, environ_update=None, data=None, **kwargs):
        Node.calls.append((list(args), dict(environ_update or {})))
        if "nvidia-smi" in args[-2]:
            return 0, Node.gpus, ""
        out, err = Node.mpirun_output
        return Node.mpirun_rc, out, err

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return {"timeout": "/usr/bin/timeout", "nvidia-smi": "/usr/bin/nvidia-smi"}.get(name)

    def warn(self, warning):
        Node.warned.append(warning)

    def exit_json(self, **kwargs):
        kwargs.update(warnings=list(Node.warned))
        raise Exit(kwargs, False)

    def fail_json(self, **kwargs):
        kwargs.update(warnings=list(Node.warned))
        raise Exit(kwargs, True)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(nccl_test.os, "geteuid", lambda: 1000)
    return Node


def run_module(args):
    with patch_module_args(args):
        with pytest.raises(Exit) as caught:
            nccl_test.main()
    return caught.value


def base_args(node, **extra):
    args = {
        "hosts": ["10.10.10.1", "10.10.10.2"],
        "binary_dir": node.bin_dir,
        "mpirun": node.mpirun,
        "mpi_interface": "enp1s0f0np0",
        "nccl_env": dict(ROCE_NCCL_ENV),
    }
    args.update(extra)
    return args


def mpirun_calls(node):
    return [call for call in node.calls if node.mpirun in call[0]]


# --------------------------------------------------------------------------------------------------------


def test_exact_argv_and_env_forwarding(node):
    secret_like = "s3cr3t-value-never-on-argv"
    result = run_module(base_args(
        node,
        env={"NCCL_IB_GID_INDEX": "2", "NCCL_CROSS_NIC": 1, "UCX_NET_DEVICES": "enp1s0f0np0",
             "LD_LIBRARY_PATH": "/opt/nccl/lib", "PATH": "/opt/nccl/bin:/usr/bin", "NCCL_TEST_TOKEN": secret_like,
             "OMPI_MCA_btl_base_verbose": "0"},
        ssh_user="nvidia",
        ssh_args=["-o StrictHostKeyChecking=accept-new"],
    ))
    assert not result.failed, result.result["msg"]
    calls = mpirun_calls(node)
    assert len(calls) == 1
    argv, environ = calls[0]
    # run through coreutils timeout, so the whole launch can be killed
    assert argv[:3] == ["/usr/bin/timeout", "--kill-after=5", "300"]
    mpirun_argv = argv[3:]
    forwarded = ["LD_LIBRARY_PATH", "NCCL_CROSS_NIC", "NCCL_IB_GID_INDEX", "NCCL_IB_HCA", "NCCL_SOCKET_IFNAME",
                 "NCCL_TEST_TOKEN", "PATH", "UCX_NET_DEVICES"]
    expected = [
        node.mpirun, "-np", "2", "-H", "10.10.10.1:1,10.10.10.2:1",
        "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "enp1s0f0np0",
        "--mca", "oob_tcp_if_include", "enp1s0f0np0",
        "--mca", "plm_rsh_agent", "ssh -o BatchMode=yes -l nvidia -o StrictHostKeyChecking=accept-new",
    ]
    for name in forwarded:
        expected += ["-x", name]
    expected += [os.path.join(node.bin_dir, "all_reduce_perf"), "-b", "67108864", "-e", "536870912", "-f", "2",
                 "-g", "1", "-n", "20", "-w", "5", "-c", "1"]
    assert mpirun_argv == expected
    assert result.result["cmd"] == expected
    assert result.result["forwarded_env"] == forwarded
    # every NCCL_* key gets its own -x
    merged = dict(ROCE_NCCL_ENV, NCCL_IB_GID_INDEX="2", NCCL_CROSS_NIC="1", NCCL_TEST_TOKEN=secret_like)
    for name in (k for k in merged if k.startswith("NCCL_")):
        assert mpirun_argv[mpirun_argv.index(name) - 1] == "-x"
    # values live only in mpirun's environment (user's env wins over nccl_env), never on the argv
    assert environ["NCCL_IB_GID_INDEX"] == "2" and environ["NCCL_IB_HCA"] == "rocep1s0f0,roceP2p1s0f0"
    assert environ["NCCL_CROSS_NIC"] == "1" and environ["NCCL_TEST_TOKEN"] == secret_like
    assert environ["OMPI_MCA_btl_base_verbose"] == "0" and "OMPI_MCA_btl_base_verbose" not in mpirun_argv
    assert environ["LC_ALL"] == "C"
    assert not any("=" in word and word.split("=")[0] in merged for word in mpirun_argv)
    for value in (secret_like, "rocep1s0f0,roceP2p1s0f0", "/opt/nccl/lib", "/opt/nccl/bin:/usr/bin"):
        assert not any(value in word for word in mpirun_argv), value
    assert secret_like not in repr(result.result["cmd"])


def test_healthy_run_passes_with_all_returns(node):
    result = run_module(base_args(node, binary="all_gather_perf", min_bytes="1G", max_bytes="4G"))
    r = result.result
    assert not result.failed and r["changed"] is False and r["passed"] is True
    assert r["failures"] == []
    assert r["avg_busbw_gbs"] == pytest.approx(21.4033)
    assert r["line_rate_ratio"] == pytest.approx(0.8561, abs=1e-4)
    assert r["out_of_bounds"] == 0 and len(r["rows"]) == 3
    assert r["nccl_version"] == "2.28.9" and r["nccl_tests_version"] == "2.18.3"
    assert r["sizes"] == [1 << 30, 2 << 30, 4 << 30]
    assert r["raw_output"] == fixture(HEALTHY) and r["parsed"]["collective"] == "all_gather_perf"
    assert r["summary_lines"][0].startswith("nccl_test all_gather_perf: PASSED  avg busbw 21.40 GB/s")
    assert r["rc"] == 0 and r["timed_out"] is False and r["nccl_warnings"] == []
    assert r["host_env"] == {} and "rank_env" not in r
    assert r["cmd"][r["cmd"].index("-b") + 1] == str(1 << 30)
    # below NVIDIA's 21.875 GB/s warning line: passes, with an Ansible warning
    assert any("21.875" in w for w in r["warnings"])
    # the GPU check ran before mpirun
    assert node.calls[0][0][-2:] == ["/usr/bin/nvidia-smi", "-L"]


def test_degraded_run_fails_naming_criterion_and_value(node):
    node.mpirun_output = (fixture(DEGRADED), "")
    result = run_module(base_args(node, binary="all_gather_perf", min_bytes="1G", max_bytes="4G"))
    assert result.failed
    assert result.result["msg"] == (
        "nccl_test failed: average bus bandwidth 2.82 GB/s is below the minimum 20.00 GB/s "
        "(11.3% of the 25.00 GB/s line rate)"
    )
    assert result.result["passed"] is False and len(result.result["rows"]) == 3
    assert result.result["raw_output"] == fixture(DEGRADED)


def test_degraded_run_without_fail_on_error_returns_passed_false(node):
    node.mpirun_output = (fixture(DEGRADED), "")
    result = run_module(base_args(node, fail_on_error=False))
    assert not result.failed and result.result["passed"] is False
    assert result.result["failures"][0].startswith("average bus bandwidth 2.82 GB/s")
    assert result.result["msg"] == "nccl_test did not pass"


def test_truncated_output_after_timeout_fails_clearly(node):
    node.mpirun_output = (fixture("truncated-spark-fb97-all_gather-switch.txt"), "")
    node.mpirun_rc = 124
    result = run_module(base_args(node, timeout=90))
    assert result.failed and result.result["timed_out"] is True
    assert result.result["msg"].startswith(
        "nccl_test failed: timed out after 90s: the whole mpirun launch was killed (2 size rows parsed before that); "
        "truncated output: no 'Avg bus bandwidth' line after 2 size rows")
    assert mpirun_calls(node)[0][0][:3] == ["/usr/bin/timeout", "--kill-after=5", "90"]


def test_nccl_warn_lines_become_ansible_warnings(node):
    node.mpirun_output = (fixture("constructed-spark-all_reduce-64M-512M-nccl-warn.txt"), "")
    result = run_module(base_args(node))
    assert not result.failed and result.result["passed"] is True
    assert len(result.result["nccl_warnings"]) == 2
    assert result.result["nccl_warnings"][0] in result.result["warnings"]


def test_wrong_values_fail(node):
    node.mpirun_output = (fixture("constructed-spark-all_reduce-wrong-values-oob.txt"), "")
    result = run_module(base_args(node))
    assert result.failed
    assert "wrong values in 2 size(s)" in result.result["msg"] and "out-of-bounds values: 2" in result.result["msg"]


def test_launch_failure_reports_rc_and_error(node):
    node.mpirun_output = (fixture("constructed-spark-all_reduce-nccl-init-failure.txt"), "")
    node.mpirun_rc = 1
    result = run_module(base_args(node))
    assert result.failed
    assert result.result["msg"].startswith("nccl_test failed: mpirun exited with rc 1; nccl-tests or mpirun reported "
                                           "an error: spark-2959: Test NCCL failure")


ROCE_2959 = {"NCCL_IB_HCA": "=roceP2p1s0f1,rocep1s0f1", "NCCL_IB_GID_INDEX": "3",
             "NCCL_SOCKET_IFNAME": "=enP2p1s0f1np1,enp1s0f1np1"}
ROCE_BA63 = {"NCCL_IB_HCA": "=roceP2p1s0f1,rocep1s0f1", "NCCL_IB_GID_INDEX": "5",
             "NCCL_SOCKET_IFNAME": "=enP2p1s0f1np1,enp1s0f1np1"}


def test_host_env_gives_each_node_its_own_values(node):
    """Each node's roce_check nccl_env reaches that node's ranks only: one app context per host with its
    values; common variables still by name, their values only in mpirun's environment."""
    result = run_module(base_args(
        node, nccl_env={}, host_env={"10.10.10.1": ROCE_2959, "10.10.10.2": ROCE_BA63},
        env={"NCCL_TEST_TOKEN": "s3cr3t", "NCCL_CROSS_NIC": 1},
    ))
    assert not result.failed, result.result["msg"]
    (argv, environ), = mpirun_calls(node)
    program = [os.path.join(node.bin_dir, "all_reduce_perf"), "-b", "67108864", "-e", "536870912", "-f", "2",
               "-g", "1", "-n", "20", "-w", "5", "-c", "1"]
    expected = [
        node.mpirun,
        "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "enp1s0f0np0",
        "--mca", "oob_tcp_if_include", "enp1s0f0np0", "--mca", "plm_rsh_agent", "ssh -o BatchMode=yes",
        "-np", "1", "-H", "10.10.10.1:1", "-x", "NCCL_CROSS_NIC", "-x", "NCCL_TEST_TOKEN",
        "-x", "NCCL_IB_GID_INDEX=3", "-x", "NCCL_IB_HCA==roceP2p1s0f1,rocep1s0f1",
        "-x", "NCCL_SOCKET_IFNAME==enP2p1s0f1np1,enp1s0f1np1",
    ] + program + [
        ":", "-np", "1", "-H", "10.10.10.2:1", "-x", "NCCL_CROSS_NIC", "-x", "NCCL_TEST_TOKEN",
        "-x", "NCCL_IB_GID_INDEX=5", "-x", "NCCL_IB_HCA==roceP2p1s0f1,rocep1s0f1",
        "-x", "NCCL_SOCKET_IFNAME==enP2p1s0f1np1,enp1s0f1np1",
    ] + program
    assert argv[3:] == expected and result.result["cmd"] == expected
    assert result.result["forwarded_env"] == ["NCCL_CROSS_NIC", "NCCL_TEST_TOKEN"]
    assert result.result["host_env"] == {"10.10.10.1": ROCE_2959, "10.10.10.2": ROCE_BA63}
    # per-host values never in mpirun's environment (the launcher's local ranks would inherit them)
    assert not [name for name in ROCE_2959 if name in environ]
    assert environ["NCCL_TEST_TOKEN"] == "s3cr3t" and "s3cr3t" not in repr(argv)


def test_host_env_for_an_unknown_host_is_refused(node):
    result = run_module(base_args(node, host_env={"spark-ba63": ROCE_BA63}))
    assert result.failed and node.calls == []
    assert result.result["msg"] == "host_env: 'spark-ba63' is not one of hosts (10.10.10.1, 10.10.10.2)"


# --------------------------------------------------------------------------------------------------------
# check mode and refusals


def test_check_mode_runs_nothing_and_returns_cmd(node):
    args = base_args(node, env={"NCCL_TEST_TOKEN": "hidden"}, _ansible_check_mode=True)
    result = run_module(args)
    assert not result.failed
    assert node.calls == []
    r = result.result
    assert r["changed"] is False and r["passed"] is None and r["msg"] == "check mode: nothing was run"
    assert r["cmd"][0] == node.mpirun and "-x" in r["cmd"] and "NCCL_TEST_TOKEN" in r["cmd"]
    assert "hidden" not in repr(r["cmd"])


def test_check_mode_warns_about_missing_binary(node):
    result = run_module(base_args(node, binary="sendrecv_perf", _ansible_check_mode=True))
    assert not result.failed and node.calls == []
    assert any("check mode: nccl-tests binary sendrecv_perf not found" in w for w in result.result["warnings"])


def test_sixteen_gib_is_refused(node):
    result = run_module(base_args(node, min_bytes="16G", max_bytes="16G"))
    assert result.failed and node.calls == []
    assert result.result["msg"].startswith("max_bytes 16 GiB (17179869184 bytes) is above the memory-safe cap of 8 GiB")


def test_sixteen_gib_with_allow_large_sizes_runs(node):
    node.mpirun_output = (fixture("gb10-promax-all_gather-16G-single-size.txt"), "")
    result = run_module(base_args(node, binary="all_gather_perf", min_bytes="16G", max_bytes="16G",
                                  allow_large_sizes=True))
    assert not result.failed and result.result["passed"] is True


def test_bad_size_string(node):
    result = run_module(base_args(node, max_bytes="lots"))
    assert result.failed and result.result["msg"].startswith("max_bytes: expected a size")


def test_missing_mpirun(node, tmp_path):
    result = run_module(base_args(node, mpirun="mpirun"))
    assert result.failed and node.calls == []
    assert result.result["msg"].startswith("mpirun not found on this node")


def test_missing_binary(node):
    result = run_module(base_args(node, binary="alltoall_perf"))
    assert result.failed and node.calls == []
    assert result.result["msg"] == (
        "nccl-tests binary alltoall_perf not found or not executable at %s (build nccl-tests with MPI=1 at the "
        "same path on every host)" % os.path.join(node.bin_dir, "alltoall_perf"))


def test_no_gpu(node):
    node.gpus = "No devices were found\n"
    result = run_module(base_args(node))
    assert result.failed and result.result["msg"].startswith("nvidia-smi -L shows no GPU on this node")
    assert mpirun_calls(node) == []


def test_fewer_gpus_than_gpus_per_node(node):
    result = run_module(base_args(node, gpus_per_node=2))
    assert result.failed
    assert result.result["msg"] == "nvidia-smi -L shows 1 GPU(s) on this node, gpus_per_node is 2"


def test_require_gpus_false_skips_nvidia_smi(node):
    run_module(base_args(node, require_gpus=False))
    assert all("nvidia-smi" not in " ".join(call[0]) for call in node.calls)


def test_root_needs_allow_run_as_root(node, monkeypatch):
    monkeypatch.setattr(nccl_test.os, "geteuid", lambda: 0)
    result = run_module(base_args(node))
    assert result.failed and "allow_run_as_root" in result.result["msg"] and mpirun_calls(node) == []
    node.calls[:] = []
    result = run_module(base_args(node, allow_run_as_root=True))
    assert not result.failed and mpirun_calls(node)[0][0][4] == "--allow-run-as-root"


# --------------------------------------------------------------------------------------------------------
# end to end with the real mpirun and coreutils timeout on this machine, local ranks only, running the lab
# stand-in (tests/lab/nccl-standin). Skipped where Open MPI is not installed (apt-get install openmpi-bin).

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "nccl-standin",
                                       "all_reduce_perf_standin"))
needs_mpirun = pytest.mark.skipif(shutil.which("mpirun") is None or shutil.which("timeout") is None,
                                  reason="Open MPI's mpirun (openmpi-bin) is not installed here")


def run_real(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            nccl_test.main()
    return json.loads(capsys.readouterr().out)


def standin_args(**extra):
    args = {
        "hosts": ["localhost"],
        "gpus_per_node": 2,
        "binary": STANDIN,
        "mpi_interface": "lo",
        "require_gpus": False,
        "allow_run_as_root": os.geteuid() == 0,
        "extra_mpirun_args": ["--oversubscribe"],
        "nccl_env": dict(ROCE_NCCL_ENV),
        "env": {"UCX_NET_DEVICES": "enp1s0f0np0", "NCCL_IB_GID_INDEX": "2"},
        "timeout": 60,
    }
    args.update(extra)
    return args


# A stand-in for ssh (a test double, not OpenSSH): it drops ssh's options and the host name and runs the remote
# command line here in a clean environment, as sshd would on another node. mpirun treats the host as remote,
# starts its orted through it, and that rank gets only what mpirun forwards.
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -o|-l|-i|-p) shift 2;; -*) shift;; *) break;; esac; done
shift
exec env -i HOME="$HOME" PATH=/usr/local/bin:/usr/bin:/bin /bin/sh -c "$*"
"""


def env_lines(raw_output):
    """The stand-in's '# rank N on HOST env NAME=value' comment lines -> {rank: {name: value}}."""
    seen = {}
    for line in raw_output.splitlines():
        words = line.split(" ", 6)
        if len(words) == 7 and words[:2] == ["#", "rank"] and words[3] == "on" and words[5] == "env":
            name, unused, value = words[6].partition("=")
            seen.setdefault(int(words[2]), {})[name] = value
    return seen


@needs_mpirun
def test_real_mpirun_runs_the_standin_on_every_rank_with_the_env(capsys):
    result = run_real(standin_args(), capsys)
    assert result.get("failed") is not True, result.get("msg")
    assert result["passed"] is True and result["rc"] == 0 and result["timed_out"] is False
    assert sorted(rank["rank"] for rank in result["ranks"]) == [0, 1]
    expected = dict(ROCE_NCCL_ENV, NCCL_IB_GID_INDEX="2", UCX_NET_DEVICES="enp1s0f0np0")
    assert env_lines(result["raw_output"]) == {0: expected, 1: expected}
    assert result["avg_busbw_gbs"] == pytest.approx(21.4033)


@needs_mpirun
def test_real_mpirun_gives_each_host_its_own_values(capsys, tmp_path):
    """Real Open MPI, two app contexts, the second on a host reached through FAKE_SSH: the remote rank gets its
    host's GID index and device names and the common variables, and nothing of the launcher's per-host values."""
    (tmp_path / "ssh").write_text(FAKE_SSH)
    (tmp_path / "ssh").chmod(0o755)
    path = "%s:%s" % (tmp_path, os.environ.get("PATH", "/usr/bin:/bin"))
    result = run_real(standin_args(
        hosts=["localhost", "pseudo-remote"], gpus_per_node=1, extra_mpirun_args=[], nccl_env={},
        host_env={"localhost": ROCE_2959, "pseudo-remote": dict(ROCE_BA63, NCCL_IB_HCA="=with space,x")},
        env={"PATH": path, "NCCL_CROSS_NIC": "1"}, fail_on_error=False,
    ), capsys)
    assert result.get("failed") is not True, result.get("msg")
    assert result["rc"] == 0 and ":" in result["cmd"]
    assert env_lines(result["raw_output"]) == {
        0: dict(ROCE_2959, NCCL_CROSS_NIC="1"),
        1: dict(ROCE_BA63, NCCL_IB_HCA="=with space,x", NCCL_CROSS_NIC="1"),
    }
    # both ranks ran on this machine, so the host count is the only failure
    assert result["failures"] == ["ranks ran on 1 host(s) (%s), expected 2: the test did not cross between the "
                                  "nodes" % result["ranks"][0]["host"]]


@needs_mpirun
def test_real_timeout_kills_the_launch_and_reports_it(capsys):
    result = run_real(standin_args(env={"NCCL_STANDIN_HANG": "60"}, timeout=3), capsys)
    assert result["failed"] is True and result["timed_out"] is True and result["rc"] in (124, 137)
    assert result["msg"].startswith("nccl_test failed: timed out after 3s: the whole mpirun launch was killed "
                                    "(1 size rows parsed before that); truncated output")
    assert result["duration_s"] < 30
