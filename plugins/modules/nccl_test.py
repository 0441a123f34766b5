#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nccl_test
short_description: Run nccl-tests across the nodes with mpirun and judge the result
version_added: 0.1.0
description:
  - Runs an nccl-tests binary (C(all_reduce_perf) by default) with C(mpirun) across O(hosts), one rank per GPU,
    and judges the output - no wrong values, no out-of-bounds values, a complete output, the expected ranks,
    and an average bus bandwidth at or above O(min_avg_busbw_gbs).
  - Runs on one node (the launcher, normally the control plane), which starts the ranks on every host over SSH.
    nccl-tests (built with C(MPI=1)) and the same OpenMPI must be at the same paths on every host, and the
    launching user needs passwordless SSH to every host.
  - Every variable of O(nccl_env) and O(env) is set in mpirun's own environment and forwarded to every rank by
    name (C(-x NAME)); their values are never put on the command line.
  - Variables that belong to one node (O(host_env), normally each node's own M(dgx_spark.cluster.roce_check)
    C(nccl_env) with its RoCE v2 GID index, HCA and netdev names) reach only that node's ranks. The launch then has
    one OpenMPI app context per host, separated by C(:), each carrying its host's values as C(-x NAME=value),
    so those values are on the command line.
  - Sizes above a memory-safe cap of 8 GiB are refused unless O(allow_large_sizes=true) - on a DGX Spark the GPU
    shares the node's unified memory and the 16 GiB test freezes a node.
  - The whole launch runs under coreutils C(timeout); when O(timeout) expires, mpirun and everything it started
    are killed, and the module fails saying so.
  - Never changes anything; results are returned (RV(raw_output), RV(parsed)) for the playbook to save on the
    controller.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: partial
    details:
      - In check mode nothing is run (not even C(nvidia-smi)); the module returns the C(mpirun) argv it would run
        (RV(cmd)) with C(changed=false), and warns when C(mpirun) or the binary is missing. No measurement is made,
        so RV(passed) is null.
  diff_mode:
    support: none
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details:
      - It is a test; it never changes the system and always reports C(changed=false). The measured numbers, and so
        RV(passed), can differ from run to run.
  platform:
    support: full
    platforms: posix
options:
  hosts:
    description:
      - Hosts to run ranks on, as addresses or names that C(ssh) and mpirun's C(-H) accept (no C(:) or C(,)).
      - Include the launcher itself, normally first (rank 0 prints the table).
    type: list
    elements: str
    required: true
  gpus_per_node:
    description:
      - GPUs, and so ranks, per host. C(-np) is C(len(hosts) * gpus_per_node); each rank uses one GPU (C(-g 1)).
    type: int
    default: 1
  binary:
    description:
      - The nccl-tests binary, a name or an absolute path.
      - Known names are C(all_reduce_perf), C(all_gather_perf), C(broadcast_perf), C(reduce_perf),
        C(reduce_scatter_perf), C(alltoall_perf), C(gather_perf), C(scatter_perf), C(sendrecv_perf),
        C(hypercube_perf); any other name is accepted.
    type: str
    default: all_reduce_perf
  binary_dir:
    description:
      - Directory holding O(binary) (for example C(/opt/nccl-tests/build); C(~) is expanded on the launcher). Without it a
        bare name is looked up in C(PATH). The path must be the same on every host.
    type: path
  binary_args:
    description:
      - Extra arguments for the binary (for example C(-d bfloat16)), after the size and iteration arguments.
        Each item may hold several shell-quoted words.
    type: list
    elements: str
    default: []
  mpirun:
    description:
      - The C(mpirun) to use, a name looked up in C(PATH) and the usual OpenMPI directories, or an absolute path.
    type: str
    default: mpirun
  mpi_interface:
    description:
      - Interface name (or CIDR) for MPI's own traffic, to run it over the management or the fabric network.
        Adds C(--mca btl tcp,self --mca btl_tcp_if_include X --mca oob_tcp_if_include X).
      - Left unset, OpenMPI picks interfaces itself.
    type: str
  ssh_user:
    description:
      - User for mpirun's SSH to the hosts (C(ssh -l USER) in C(plm_rsh_agent)).
    type: str
  ssh_args:
    description:
      - Extra C(ssh) arguments for C(plm_rsh_agent), for example C(-o StrictHostKeyChecking=accept-new).
        C(-o BatchMode=yes) is always set, so a missing key fails at once instead of waiting for a password.
      - OpenMPI splits the agent string on spaces, so no single word may contain whitespace.
    type: list
    elements: str
    default: []
  extra_mpirun_args:
    description:
      - Extra C(mpirun) arguments, placed before the binary (for example C(--bind-to none)).
    type: list
    elements: str
    default: []
  allow_run_as_root:
    description:
      - Pass C(--allow-run-as-root). OpenMPI refuses to run as root without it; the module checks this before
        running.
    type: bool
    default: false
  nccl_env:
    description:
      - NCCL variables for every rank, the lowest layer (O(host_env) and O(env) are merged over it).
      - Do not put one node's M(dgx_spark.cluster.roce_check) C(nccl_env) here for all nodes, since its GID index and
        device names hold for that node only. Use O(host_env).
    type: dict
    default: {}
  host_env:
    description:
      - Variables per host, keyed by the entries of O(hosts) (each key must be one of them), normally each node's
        own M(dgx_spark.cluster.roce_check) C(nccl_env); see the examples.
      - A rank's environment is O(nccl_env), then O(host_env) of its host, then O(env) (later wins; a null value
        removes a variable). A name that some host sets here goes to each host by value (C(-x NAME=value) in
        that host's app context), never through mpirun's own environment; a host without its own value gets
        O(nccl_env)'s, if any.
      - The values are on the command line (RV(cmd)); keep secrets in O(env). C(OMPI_*), C(PMIX_*), C(PRTE_*) and
        C(OPAL_*) are refused here (they configure mpirun itself). With per-host values, each host may appear in
        O(hosts) only once.
    type: dict
    default: {}
  env:
    description:
      - More variables, merged over O(nccl_env) and O(host_env) (these win on every host; a null value removes a
        variable).
      - Every variable is forwarded to every rank with C(-x NAME) (C(NCCL_*), C(UCX_*), C(LD_LIBRARY_PATH),
        C(PATH), anything else), except C(OMPI_*), C(PMIX_*), C(PRTE_*) and C(OPAL_*), which configure mpirun
        itself and are only set in its environment.
    type: dict
    default: {}
  min_bytes:
    description:
      - Smallest message size (C(-b)), bytes as an integer or a string with a K, M, G or T suffix (powers of 1024).
      - The average bus bandwidth spans every size of the sweep, so small sizes pull it down; the default
        threshold is meant for sweeps from 64M up.
    type: raw
    default: 64M
  max_bytes:
    description:
      - Largest message size (C(-e)), as O(min_bytes). Above 8G the module refuses to run unless
        O(allow_large_sizes=true).
    type: raw
    default: 512M
  step_factor:
    description:
      - Multiplication factor between sizes (C(-f)), 2 or more.
    type: int
    default: 2
  allow_large_sizes:
    description:
      - Allow O(max_bytes) above 8 GiB. The 16 GiB test has frozen DGX Spark nodes (unified memory), needing a
        power cycle.
    type: bool
    default: false
  iters:
    description:
      - Timed iterations per size (C(-n)).
    type: int
    default: 20
  warmup_iters:
    description:
      - Warm-up iterations per size (C(-w)).
    type: int
    default: 5
  timeout:
    description:
      - Seconds the whole launch may take (NCCL initialisation included); then coreutils C(timeout) kills mpirun and
        everything it started, and the module fails with a timeout message.
    type: int
    default: 300
  min_avg_busbw_gbs:
    description:
      - Minimum average bus bandwidth (GB/s) to pass. Two Sparks over one 200 Gb/s cable reach about 21-22 GB/s;
        without C(NCCL_IB_HCA) naming both halves of the port, about 3 GB/s.
    type: float
    default: 20.0
  warn_avg_busbw_gbs:
    description:
      - An average below this (but at or above O(min_avg_busbw_gbs)) passes with a warning. The default is the line
        NVIDIA's own Spark cluster script warns below (175 Gb/s). C(0) turns the warning off.
    type: float
    default: 21.875
  line_rate_gbs:
    description:
      - Line rate (GB/s) that RV(line_rate_ratio) is computed against; 200 Gb/s is 25 GB/s.
    type: float
    default: 25.0
  require_gpus:
    description:
      - Check with C(nvidia-smi -L) on the launcher that it has at least O(gpus_per_node) GPUs before running.
        Other hosts' GPUs show in the nccl-tests rank lines, which are checked against the expected rank count.
    type: bool
    default: true
  fail_on_nccl_warnings:
    description:
      - Fail when the output holds C(NCCL WARN) lines (by default they are only reported).
    type: bool
    default: false
  fail_on_error:
    description:
      - Fail the task when the test does not pass. With V(false) the module returns RV(passed=false) and
        RV(failures) without failing, so a playbook can save the results first and assert afterwards.
      - Bad options (sizes above the cap, missing mpirun, binary or GPUs) always fail.
    type: bool
    default: true
notes:
  - The default sweep (64M to 512M, factor 2) runs four sizes in seconds and stays far below the memory cap.
  - NCCL C(WARN) lines are returned in RV(nccl_warnings) and also raised as Ansible warnings.
seealso:
  - module: dgx_spark.cluster.roce_check
"""

EXAMPLES = r"""
- name: Validate the fabric with RoCE first, on every node (each node's own GID index and device names)
  dgx_spark.cluster.roce_check:
  register: roce

- name: All-reduce across both Sparks over the fabric, each node's ranks with that node's RoCE settings
  dgx_spark.cluster.nccl_test:
    hosts: [10.10.10.1, 10.10.10.2]
    binary_dir: /opt/nccl-tests/build
    mpi_interface: enp1s0f0np0
    host_env:
      10.10.10.1: "{{ hostvars['spark-2959'].roce.nccl_env }}"
      10.10.10.2: "{{ hostvars['spark-ba63'].roce.nccl_env }}"
    env:
      NCCL_IB_MERGE_NICS: 1
      NCCL_CROSS_NIC: 1
      LD_LIBRARY_PATH: /usr/local/cuda/lib64
  register: nccl
  run_once: true
  delegate_to: spark-2959

- name: All-gather from 1G to 4G, report without failing, then save and assert
  dgx_spark.cluster.nccl_test:
    hosts: [10.10.10.1, 10.10.10.2]
    binary: all_gather_perf
    binary_dir: /opt/nccl-tests/build
    min_bytes: 1G
    max_bytes: 4G
    ssh_user: nvidia
    ssh_args: ["-o StrictHostKeyChecking=accept-new"]
    host_env:
      10.10.10.1: {NCCL_IB_HCA: "=roceP2p1s0f1,rocep1s0f1", NCCL_IB_GID_INDEX: "3"}
      10.10.10.2: {NCCL_IB_HCA: "=roceP2p1s0f1,rocep1s0f1", NCCL_IB_GID_INDEX: "5"}
    fail_on_error: false
    timeout: 600
  register: nccl

- name: Show the one-screen summary
  ansible.builtin.debug:
    var: nccl.summary_lines

- name: Check mode shows the exact mpirun command and runs nothing
  dgx_spark.cluster.nccl_test:
    hosts: [10.10.10.1, 10.10.10.2]
    env:
      NCCL_DEBUG: INFO
  check_mode: true
  register: planned
"""

RETURN = r"""
passed:
  description: Whether every criterion held. Null in check mode.
  returned: always
  type: bool
  sample: true
failures:
  description: One message per failed criterion, naming it and its value.
  returned: always
  type: list
  elements: str
  sample: ["average bus bandwidth 2.82 GB/s is below the minimum 20.00 GB/s (11.3% of the 25.00 GB/s line rate)"]
notes:
  description: Remarks that do not fail the test (below NVIDIA's warning line, N/A wrong counts, NCCL WARN lines).
  returned: always
  type: list
  elements: str
avg_busbw_gbs:
  description: The C(Avg bus bandwidth) nccl-tests printed (GB/s), over every size of the sweep. Null if missing.
  returned: success
  type: float
  sample: 21.4033
line_rate_ratio:
  description: RV(avg_busbw_gbs) divided by O(line_rate_gbs).
  returned: success
  type: float
  sample: 0.8561
out_of_bounds:
  description: The C(Out of bounds values) count nccl-tests printed. Null if missing.
  returned: success
  type: int
  sample: 0
rows:
  description:
    - One entry per message size. C(wrong) is null when nccl-tests printed C(N/A) (validation off) or in the legacy
      format, whose C(error) column (a relative error) is kept as C(error).
  returned: success
  type: list
  elements: dict
  sample:
    - size: 1073741824
      count: 134217728
      type: float
      redop: none
      root: -1
      out_of_place: {time_us: 27211.0, algbw_gbs: 39.46, busbw_gbs: 19.73, wrong: 0}
      in_place: {time_us: 25806.7, algbw_gbs: 41.61, busbw_gbs: 20.8, wrong: 0}
ranks:
  description: The C(Rank N ... on HOST device D) lines of the output.
  returned: success
  type: list
  elements: dict
  sample: [{rank: 0, group: 0, pid: 548419, host: spark-fb97, device: 0, bus_id: "000f:01:00", device_name: NVIDIA GB10}]
nccl_version:
  description: NCCL version, from NCCL's own banner when printed, else decoded from C(nccl-library=).
  returned: success
  type: str
  sample: 2.28.9
nccl_tests_version:
  description: nccl-tests version from its first line.
  returned: success
  type: str
  sample: 2.18.3
nccl_warnings:
  description: The C(NCCL WARN) lines from stdout and stderr (also raised as Ansible warnings).
  returned: success
  type: list
  elements: str
summary_lines:
  description: A short, one-screen table - verdict and average, then per size the out-of-place and in-place bus
    bandwidth, wrong values and a verdict (C(ok), C(below) the minimum, C(WRONG)), then each failure.
  returned: success
  type: list
  elements: str
  sample:
    - "nccl_test all_gather_perf: PASSED  avg busbw 21.40 GB/s (minimum 20.00, 85.6% of 25.00 GB/s line rate)"
    - "ranks 2 on spark-fb97, spark-4440 | NCCL 2.28.9 | nccl-tests 2.18.3"
    - "        size   oop busbw    ip busbw    wrong  verdict"
    - "       1 GiB       19.73       20.80        0  ok"
    - "out of bounds: 0 | NCCL warnings: 0"
cmd:
  description:
    - The exact mpirun argv (without the C(timeout) wrapper). Common variables appear by name only (C(-x NAME)),
      never with their values; the per-host values of O(host_env) appear as C(-x NAME=value), one app context per
      host separated by C(:).
  returned: always
  type: list
  elements: str
  sample: [/usr/bin/mpirun, --mca, plm_rsh_agent, ssh -o BatchMode=yes,
           -np, "1", -H, "10.10.10.1:1", -x, LD_LIBRARY_PATH, -x, NCCL_IB_GID_INDEX=3,
           /opt/nccl-tests/build/all_reduce_perf, -b, "67108864", -e, "536870912", -f, "2", -g, "1", -n, "20", -w, "5",
           -c, "1", ":",
           -np, "1", -H, "10.10.10.2:1", -x, LD_LIBRARY_PATH, -x, NCCL_IB_GID_INDEX=5,
           /opt/nccl-tests/build/all_reduce_perf, -b, "67108864", -e, "536870912", -f, "2", -g, "1", -n, "20", -w, "5",
           -c, "1"]
forwarded_env:
  description: Names of the variables forwarded to every rank by name with C(-x NAME) (values in mpirun's environment).
  returned: always
  type: list
  elements: str
  sample: [LD_LIBRARY_PATH, NCCL_IB_MERGE_NICS]
host_env:
  description:
    - The variables each host's ranks get by value (C(-x NAME=value) in that host's app context), per entry of
      O(hosts), after merging O(nccl_env), O(host_env) and O(env). Empty when no O(host_env) was given.
  returned: always
  type: dict
  sample: {10.10.10.1: {NCCL_IB_GID_INDEX: "3", NCCL_IB_HCA: "=roceP2p1s0f1,rocep1s0f1"},
           10.10.10.2: {NCCL_IB_GID_INDEX: "5", NCCL_IB_HCA: "=roceP2p1s0f1,rocep1s0f1"}}
sizes:
  description: The message sizes of the sweep, in bytes.
  returned: always
  type: list
  elements: int
  sample: [67108864, 134217728, 268435456, 536870912]
rc:
  description: mpirun's exit status (124 when the timeout killed it).
  returned: success
  type: int
timed_out:
  description: Whether the timeout killed the launch.
  returned: success
  type: bool
started:
  description: When the launch started, in UTC (C(YYYYMMDDTHHMMSSZ)); names the saved evidence files.
  returned: when the test ran (not in check mode)
  type: str
  sample: 20261128T143512Z
duration_s:
  description: Seconds the launch took.
  returned: success
  type: float
raw_output:
  description: mpirun's standard output as printed (the nccl-tests table), for saving on the controller.
  returned: success
  type: str
stderr:
  description: mpirun's standard error.
  returned: success
  type: str
parsed:
  description: Everything parsed from the output (version fields, config line, ranks, column names, rows, footer,
    warnings, errors), for saving as JSON on the controller.
  returned: success
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils.nccl import (
    NcclInputError,
    build_mpirun_argv,
    check_sizes,
    classify_exit,
    forwarded_names,
    judge,
    plan_env,
    parse_nvidia_smi_list,
    parse_output,
    parse_size,
    size_sweep,
    summary_lines,
)

MPI_DIRS = [
    "/usr/local/bin",
    "/usr/lib/aarch64-linux-gnu/openmpi/bin",
    "/usr/lib/x86_64-linux-gnu/openmpi/bin",
    "/usr/mpi/gcc/openmpi/bin",
    "/opt/hpcx/ompi/bin",
]
MAX_ANSIBLE_WARNINGS = 10


class _WithEnviron(object):
    """The AnsibleModule as CommandRunner sees it, with ``env`` added to every run_command's environment,
    so the forwarded values reach mpirun without ever being on its command line."""

    def __init__(self, module, environ):
        self._module = module
        self._environ = environ

    def __getattr__(self, name):
        return getattr(self._module, name)

    def run_command(self, args, environ_update=None, **kwargs):
        merged = dict(self._environ)
        merged.update(environ_update or {})
        return self._module.run_command(args, environ_update=merged, **kwargs)


def _resolve(module, runner, p):
    """Return (mpirun path, binary path, problems)."""
    problems = []
    mpirun = p["mpirun"]
    if "/" in mpirun:
        mpirun_path = mpirun if os.access(mpirun, os.X_OK) else None
    else:
        mpirun_path = runner.binary(mpirun, required=False, extra_paths=MPI_DIRS)
    if not mpirun_path:
        problems.append("mpirun not found on this node (%s; install OpenMPI, e.g. the openmpi-bin package, "
                        "or set mpirun to its path)" % mpirun)
    binary = p["binary"]
    if "/" in binary:
        binary_path = binary
    elif p["binary_dir"]:
        binary_path = os.path.join(p["binary_dir"], binary)
    else:
        binary_path = runner.binary(binary, required=False, extra_paths=[])
    if not binary_path or not (os.path.isfile(binary_path) and os.access(binary_path, os.X_OK)):
        where = binary_path or ("PATH (set binary_dir to the nccl-tests build directory)")
        problems.append("nccl-tests binary %s not found or not executable at %s (build nccl-tests with MPI=1 "
                        "at the same path on every host)" % (binary, where))
        binary_path = binary_path or binary
    return mpirun_path or mpirun, binary_path, problems


def _check_gpus(module, runner, gpus_per_node, base):
    smi = runner.binary("nvidia-smi", required=False, extra_paths=["/usr/bin", "/usr/local/bin"])
    if not smi:
        module.fail_json(msg="nvidia-smi not found on this node: no NVIDIA driver? (require_gpus: false skips "
                             "this check)", **base)
    rc, out, err = runner.run([smi, "-L"], check=False, timeout=60)
    gpus = parse_nvidia_smi_list(out)
    if rc != 0 or not gpus:
        module.fail_json(msg="nvidia-smi -L shows no GPU on this node (rc %s): %s"
                             % (rc, (err or out or "").strip()[:300]), gpus=gpus, **base)
    if len(gpus) < gpus_per_node:
        module.fail_json(msg="nvidia-smi -L shows %d GPU(s) on this node, gpus_per_node is %d"
                             % (len(gpus), gpus_per_node), gpus=gpus, **base)
    return gpus


ARGUMENT_SPEC = dict(
    hosts=dict(type="list", elements="str", required=True),
    gpus_per_node=dict(type="int", default=1),
    binary=dict(type="str", default="all_reduce_perf"),
    binary_dir=dict(type="path"),
    binary_args=dict(type="list", elements="str", default=[]),
    mpirun=dict(type="str", default="mpirun"),
    mpi_interface=dict(type="str"),
    ssh_user=dict(type="str"),
    ssh_args=dict(type="list", elements="str", default=[]),
    extra_mpirun_args=dict(type="list", elements="str", default=[]),
    allow_run_as_root=dict(type="bool", default=False),
    nccl_env=dict(type="dict", default={}),
    host_env=dict(type="dict", default={}),
    env=dict(type="dict", default={}),
    min_bytes=dict(type="raw", default="64M"),
    max_bytes=dict(type="raw", default="512M"),
    step_factor=dict(type="int", default=2),
    allow_large_sizes=dict(type="bool", default=False),
    iters=dict(type="int", default=20),
    warmup_iters=dict(type="int", default=5),
    timeout=dict(type="int", default=300),
    min_avg_busbw_gbs=dict(type="float", default=20.0),
    warn_avg_busbw_gbs=dict(type="float", default=21.875),
    line_rate_gbs=dict(type="float", default=25.0),
    require_gpus=dict(type="bool", default=True),
    fail_on_nccl_warnings=dict(type="bool", default=False),
    fail_on_error=dict(type="bool", default=True),
)


def _run_and_judge(module, p, env, argv, base):
    """Run the launch (values only in mpirun's environment), parse, judge, exit."""
    runner = CommandRunner(_WithEnviron(module, env), default_timeout=p["timeout"])
    started = time.time()
    rc, out, err = runner.run(argv, check=False, timeout=p["timeout"])
    elapsed = round(time.time() - started, 1)
    outcome = classify_exit(rc, elapsed, p["timeout"])

    parsed = parse_output(out, err)
    verdict = judge(
        parsed, rc=rc, outcome=outcome, timeout_s=p["timeout"],
        expected_ranks=len(p["hosts"]) * p["gpus_per_node"], expected_hosts=len(set(p["hosts"])),
        min_avg_busbw_gbs=p["min_avg_busbw_gbs"], warn_avg_busbw_gbs=p["warn_avg_busbw_gbs"],
        line_rate_gbs=p["line_rate_gbs"], fail_on_nccl_warnings=p["fail_on_nccl_warnings"],
    )
    for line in parsed["warnings"][:MAX_ANSIBLE_WARNINGS]:
        module.warn(line)
    for note in verdict["notes"]:
        if "NCCL WARN line(s)" not in note:
            module.warn(note)
    result = dict(
        base, passed=verdict["passed"], failures=verdict["failures"], notes=verdict["notes"],
        avg_busbw_gbs=parsed["avg_busbw_gbs"], line_rate_ratio=verdict["line_rate_ratio"],
        out_of_bounds=parsed["out_of_bounds"], rows=parsed["rows"], ranks=parsed["ranks"],
        nccl_version=parsed["nccl_version"], nccl_tests_version=parsed["nccl_tests_version"],
        nccl_warnings=parsed["warnings"], parsed=parsed,
        summary_lines=summary_lines(parsed, verdict, p["binary"], p["min_avg_busbw_gbs"], p["line_rate_gbs"]),
        rc=rc, timed_out=outcome == "timeout", duration_s=elapsed, raw_output=out, stderr=err,
        started=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)),
    )
    if not verdict["passed"] and p["fail_on_error"]:
        module.fail_json(msg="nccl_test failed: %s" % "; ".join(verdict["failures"]), **result)
    module.exit_json(msg="nccl_test %s" % ("passed" if verdict["passed"] else "did not pass"), **result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    try:
        min_bytes = parse_size(p["min_bytes"], "min_bytes")
        max_bytes = parse_size(p["max_bytes"], "max_bytes")
        problems = check_sizes(min_bytes, max_bytes, p["step_factor"], p["allow_large_sizes"])
        if problems:
            raise NcclInputError("; ".join(problems))
        env, per_host = plan_env(p["hosts"], p["nccl_env"], p["env"], p["host_env"])
        names = forwarded_names(env)
        probe = CommandRunner(module, default_timeout=60)
        mpirun_path, binary_path, missing = _resolve(module, probe, p)
        argv = build_mpirun_argv(
            mpirun_path, binary_path, p["hosts"], p["gpus_per_node"], names, p["mpi_interface"],
            p["ssh_user"], p["ssh_args"], min_bytes, max_bytes, p["step_factor"], p["iters"],
            p["warmup_iters"], p["extra_mpirun_args"], p["binary_args"], p["allow_run_as_root"], per_host,
        )
    except NcclInputError as exc:
        module.fail_json(msg=str(exc))
    base = dict(changed=False, cmd=argv, forwarded_env=names, host_env=per_host,
                sizes=size_sweep(min_bytes, max_bytes, p["step_factor"]))

    if module.check_mode:
        for problem in missing:
            module.warn("check mode: %s" % problem)
        module.exit_json(msg="check mode: nothing was run", passed=None, failures=[], notes=[], **base)
    if missing:
        module.fail_json(msg="; ".join(missing), **base)
    if os.geteuid() == 0 and not (p["allow_run_as_root"] or env.get("OMPI_ALLOW_RUN_AS_ROOT")):
        module.fail_json(msg="running as root: OpenMPI refuses that without allow_run_as_root: true "
                             "(or run the task without become)", **base)
    if p["require_gpus"]:
        _check_gpus(module, probe, p["gpus_per_node"], base)

    _run_and_judge(module, p, env, argv, base)


if __name__ == "__main__":
    main()
