# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the ``nccl_test`` module: no Ansible imports, no I/O.

- ``parse_size`` / ``check_sizes``: byte sizes as nccl-tests takes them (``64M``, ``1G``) and the
  memory-safety rule (a 16 GiB test freezes a DGX Spark: GPU and CPU share its 128 GB of memory).
- ``merge_env`` / ``plan_env`` / ``forwarded_names`` / ``build_mpirun_argv``: the launch. Variables common
  to every rank are set in mpirun's own environment and forwarded by name (``-x NAME``), so their values are
  never on a command line. Variables that belong to one node (``host_env``: its RoCE v2 GID index, HCA and
  netdev names) go by value in that node's own OpenMPI app context (``-x NAME=value``, one app context per
  host, ``:``-separated), so every rank gets its own node's value.
- ``parse_output``: the nccl-tests text output (current format with ``#wrong``, ``N/A`` when validation
  is off, the legacy format with an ``error`` column, NCCL banner and ``NCCL WARN`` lines, mpirun
  ``--tag-output`` prefixes).
- ``judge`` / ``summary_lines``: pass or fail, with a message naming the failing criterion and its value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# The largest size nccl_test runs without allow_large_sizes. A DGX Spark has 128 GB of unified memory
# shared by the CPU and the GPU; nccl-tests allocates send, receive and (with validation) expected buffers
# of up to max_bytes each per rank, and the published `-b 16G -e 16G` test froze a node completely
# (NVIDIA/dgx-spark-playbooks#102; power cycle needed). 8 GiB is the largest size seen run on Sparks
# without that report, so anything above it needs an explicit opt-in.
SAFE_MAX_BYTES = 8 * GIB

DEFAULT_MIN_BYTES = 64 * MIB
DEFAULT_MAX_BYTES = 512 * MIB

# 200 Gb/s = 25 GB/s; NVIDIA's own Spark cluster script warns below 21.875 GB/s (175 Gb/s).
DEFAULT_LINE_RATE_GBS = 25.0
DEFAULT_MIN_AVG_BUSBW_GBS = 20.0
NVIDIA_WARN_AVG_BUSBW_GBS = 21.875

# nccl-tests binaries (build/ of github.com/NVIDIA/nccl-tests); any other name is accepted too.
KNOWN_BINARIES = (
    "all_reduce_perf",
    "all_gather_perf",
    "broadcast_perf",
    "reduce_perf",
    "reduce_scatter_perf",
    "alltoall_perf",
    "gather_perf",
    "scatter_perf",
    "sendrecv_perf",
    "hypercube_perf",
)

# Variables that configure mpirun itself: it reads them from its own environment and passes MCA
# parameters on to the ranks on its own, so they are set but not forwarded with -x.
_NOT_FORWARDED_PREFIXES = ("OMPI_", "PMIX_", "PRTE_", "OPAL_")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}


class NcclInputError(ValueError):
    """An option value that cannot be used; the message names the option."""


# ---------------------------------------------------------------------------------------------------------
# sizes


def parse_size(value, name="size"):
    """Bytes from an int or a string like ``8``, ``64M``, ``1G``, ``512MiB`` (units are powers of 1024, as
    nccl-tests reads them)."""
    if isinstance(value, bool):
        raise NcclInputError("%s: expected a size such as 64M or 1G, got %r" % (name, value))
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise NcclInputError("%s: expected a size such as 67108864, 64M or 1G, got %r" % (name, value))
        number = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if number < 1:
        raise NcclInputError("%s: must be at least 1 byte, got %r" % (name, value))
    return number


def format_size(nbytes):
    """Human-readable binary size: 67108864 -> '64 MiB', 1536 -> '1.5 KiB'."""
    if nbytes is None:
        return "?"
    for unit, factor in (("TiB", 1024 * GIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if nbytes >= factor:
            value = nbytes / float(factor)
            text = ("%.0f" % value) if value == int(value) else ("%.1f" % value)
            return "%s %s" % (text, unit)
    return "%d B" % nbytes


def check_sizes(min_bytes, max_bytes, step_factor, allow_large_sizes=False):
    """Return a list of problems with the size sweep (empty when it may run)."""
    problems = []
    if min_bytes > max_bytes:
        problems.append(
            "min_bytes (%s) is larger than max_bytes (%s)" % (format_size(min_bytes), format_size(max_bytes))
        )
    if step_factor < 2:
        problems.append("step_factor must be 2 or more, got %s" % step_factor)
    if max_bytes > SAFE_MAX_BYTES and not allow_large_sizes:
        problems.append(
            "max_bytes %s (%d bytes) is above the memory-safe cap of %s: on a DGX Spark the GPU shares the "
            "node's unified memory and the 16 GiB nccl-tests run freezes a node (NVIDIA/dgx-spark-playbooks#102); "
            "set allow_large_sizes: true to run it anyway"
            % (format_size(max_bytes), max_bytes, format_size(SAFE_MAX_BYTES))
        )
    return problems


def size_sweep(min_bytes, max_bytes, step_factor):
    """The sizes nccl-tests will run with -b/-e/-f (for documentation and summaries)."""
    sizes = []
    size = min_bytes
    while size <= max_bytes and step_factor >= 2:
        sizes.append(size)
        size *= step_factor
    return sizes


# ---------------------------------------------------------------------------------------------------------
# environment and launch


def _env_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _check_name(name, where=None):
    if not _ENV_NAME.match(name):
        raise NcclInputError("%senvironment variable name %r is not valid" % ((where + ": ") if where else "", name))


def merge_env(nccl_env, env):
    """``nccl_env`` (normally roce_check's result) with the user's ``env`` over it; a null value in ``env``
    removes the variable. Values become strings (true/false become 1/0)."""
    merged = {}
    for source in (nccl_env or {}, env or {}):
        for name, value in source.items():
            name = str(name)
            _check_name(name)
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = _env_value(value)
    return merged


def forwarded_names(env):
    """Names passed to mpirun as ``-x NAME``: every variable in ``env`` except those that configure mpirun
    itself (OMPI_*, PMIX_*, PRTE_*, OPAL_*). NCCL_*, UCX_*, LD_LIBRARY_PATH and PATH are all forwarded."""
    return sorted(name for name in env if not name.startswith(_NOT_FORWARDED_PREFIXES))


def plan_env(hosts, nccl_env=None, env=None, host_env=None):
    """Split the variables into those common to every rank and those that belong to one host.

    Each rank's environment is ``nccl_env``, then ``host_env[its host]``, then ``env`` (the user's: it wins
    everywhere); a null value removes a variable at its layer. Returns ``(common, per_host)``:

    - ``common``: set in mpirun's own environment and forwarded by name (``-x NAME``) to every rank, so its
      values are never on a command line (secrets go here, through ``env``);
    - ``per_host``: ``{host: {name: value}}`` for every name that some ``host_env`` entry mentions (and ``env``
      does not set); these go by value in that host's own app context (``-x NAME=value``) and are NOT put in
      mpirun's environment, which the launcher's local ranks would inherit. Hosts without a value for such a
      name get none. Empty when ``host_env`` is empty.
    """
    hosts = [str(host).strip() for host in hosts or ()]
    base = merge_env(nccl_env, None)
    user = {}
    for name, value in (env or {}).items():
        _check_name(str(name), "env")
        user[str(name)] = None if value is None else _env_value(value)
    layers = {}
    for host, variables in (host_env or {}).items():
        host = str(host).strip()
        if host not in hosts:
            raise NcclInputError("host_env: %r is not one of hosts (%s)" % (host, ", ".join(hosts)))
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise NcclInputError("host_env[%s]: expected a dict of variables, got %r" % (host, variables))
        layer = {}
        for name, value in variables.items():
            name = str(name)
            _check_name(name, "host_env[%s]" % host)
            if name.startswith(_NOT_FORWARDED_PREFIXES):
                raise NcclInputError(
                    "host_env[%s]: %s configures mpirun itself and cannot differ per host (set it in env)"
                    % (host, name))
            if value is not None:
                value = _env_value(value)
                if re.search(r"[\x00-\x1f]", value):
                    raise NcclInputError("host_env[%s]: the value of %s holds a control character" % (host, name))
            layer[name] = value
        layers[host] = layer
    per_host_names = set()
    for layer in layers.values():
        per_host_names.update(layer)
    per_host_names -= set(user)
    common = dict((name, value) for name, value in base.items() if name not in per_host_names)
    for name, value in user.items():
        if value is None:
            common.pop(name, None)
        else:
            common[name] = value
    per_host = {}
    if per_host_names:
        for host in hosts:
            values = {}
            layer = layers.get(host, {})
            for name in sorted(per_host_names):
                value = layer[name] if name in layer else base.get(name)
                if value is not None:
                    values[name] = value
            per_host[host] = values
    return common, per_host


def split_args(items):
    """A list of strings where each item may hold several shell-quoted words -> flat list of words."""
    words = []
    for item in items or ():
        words.extend(shlex.split(str(item)))
    return words


def rsh_agent(ssh_user=None, ssh_args=None):
    """The plm_rsh_agent string. BatchMode keeps a missing key from hanging on a password prompt.
    OpenMPI splits this string on spaces (no quoting), so a word containing whitespace is refused."""
    words = ["ssh", "-o", "BatchMode=yes"]
    if ssh_user:
        words += ["-l", ssh_user]
    words += split_args(ssh_args)
    for word in words:
        if not word or re.search(r"\s", word):
            raise NcclInputError("ssh_args: OpenMPI cannot pass the word %r to ssh (it splits on spaces)" % word)
    return " ".join(words)


def _host_entry(host, gpus_per_node):
    host = str(host).strip()
    if not host or re.search(r"[\s,:]", host):
        raise NcclInputError("hosts: %r is not a host name or IPv4 address usable in mpirun -H" % host)
    return "%s:%d" % (host, gpus_per_node)


def host_list(hosts, gpus_per_node):
    """``-H`` value: one entry per host with its slot count, e.g. ``10.10.10.1:1,10.10.10.2:1``."""
    if not hosts:
        raise NcclInputError("hosts: at least one host is needed")
    if gpus_per_node < 1:
        raise NcclInputError("gpus_per_node must be 1 or more, got %s" % gpus_per_node)
    return ",".join(_host_entry(host, gpus_per_node) for host in hosts)


def build_mpirun_argv(
    mpirun,
    binary_path,
    hosts,
    gpus_per_node=1,
    env_names=(),
    mpi_interface=None,
    ssh_user=None,
    ssh_args=None,
    min_bytes=DEFAULT_MIN_BYTES,
    max_bytes=DEFAULT_MAX_BYTES,
    step_factor=2,
    iters=20,
    warmup_iters=5,
    extra_mpirun_args=None,
    binary_args=None,
    allow_run_as_root=False,
    host_env=None,
):
    """The exact argv: one rank per GPU; values of the common variables (``env_names``) never on it.

    Without per-host variables, one app context runs every rank: ``-np N -H h1:g,h2:g -x NAME ... binary``.
    With them (``host_env``, the ``per_host`` of ``plan_env``), one OpenMPI app context per host, in the order
    of ``hosts`` (so the ranks are numbered as before), separated by ``:``; each repeats the common ``-x NAME``
    (OpenMPI applies ``-x`` to its own app context only) and adds that host's ``-x NAME=value``:
    ``mpirun <global> -np g -H h1:g -x NAME -x GID=3 binary args : -np g -H h2:g -x NAME -x GID=5 binary args``.
    """
    host_list(hosts, gpus_per_node)
    argv = [mpirun]
    if allow_run_as_root:
        argv.append("--allow-run-as-root")
    if mpi_interface:
        if re.search(r"[\s]", mpi_interface):
            raise NcclInputError("mpi_interface: %r is not an interface name or CIDR" % mpi_interface)
    program = [
        binary_path,
        "-b", str(min_bytes),
        "-e", str(max_bytes),
        "-f", str(step_factor),
        "-g", "1",
        "-n", str(iters),
        "-w", str(warmup_iters),
        "-c", "1",
    ] + split_args(binary_args)
    common = []
    for name in env_names:
        common += ["-x", name]
    common += split_args(extra_mpirun_args)
    if not any((host_env or {}).values()):
        argv += ["-np", str(len(hosts) * gpus_per_node), "-H", host_list(hosts, gpus_per_node)]
        argv += _global_options(mpi_interface, ssh_user, ssh_args)
        return argv + common + program
    names = [str(host).strip() for host in hosts]
    for host in names:
        if names.count(host) > 1:
            raise NcclInputError("hosts: %s is listed twice; per-host variables need each host once" % host)
    argv += _global_options(mpi_interface, ssh_user, ssh_args)
    for index, host in enumerate(names):
        if index:
            argv.append(":")
        argv += ["-np", str(gpus_per_node), "-H", _host_entry(host, gpus_per_node)] + common
        for name, value in sorted((host_env.get(host) or {}).items()):
            argv += ["-x", "%s=%s" % (name, value)]
        argv += program
    return argv


def _global_options(mpi_interface, ssh_user, ssh_args):
    options = []
    if mpi_interface:
        options += [
            "--mca", "btl", "tcp,self",
            "--mca", "btl_tcp_if_include", mpi_interface,
            "--mca", "oob_tcp_if_include", mpi_interface,
        ]
    return options + ["--mca", "plm_rsh_agent", rsh_agent(ssh_user, ssh_args)]


def classify_exit(rc, elapsed_s, timeout_s):
    """'ok', 'failed', 'timeout' (coreutils timeout's 124, or 137 when it had to SIGKILL after the limit)
    or 'killed' (137 before the limit: SIGKILL from elsewhere, e.g. the OOM killer)."""
    if rc == 0:
        return "ok"
    if rc == 124:
        return "timeout"
    if rc == 137:
        if timeout_s and elapsed_s is not None and elapsed_s >= timeout_s:
            return "timeout"
        return "killed"
    return "failed"


# ---------------------------------------------------------------------------------------------------------
# nvidia-smi -L

_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]*)\))?\s*$")


def parse_nvidia_smi_list(text):
    """``nvidia-smi -L`` -> [{'index', 'name', 'uuid'}] (MIG lines, indented, are ignored)."""
    gpus = []
    for line in (text or "").splitlines():
        match = _GPU_LINE.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if match:
            gpus.append({"index": int(match.group(1)), "name": match.group(2), "uuid": match.group(3)})
    return gpus


# ---------------------------------------------------------------------------------------------------------
# nccl-tests output

_TAG_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:\s?")
_VERSION = re.compile(
    r"^#\s*nccl-tests version\s+(\S+)(?:\s+\(([^)]*)\))?(?:.*?nccl-headers=(\d+))?(?:.*?nccl-library=(\d+))?"
)
_STARTING = re.compile(r"^#\s*Collective test starting:\s*(\S+)")
_CONCLUDED = re.compile(r"^#\s*Collective test concluded:\s*(\S+)")
_CONFIG_FIELDS = (
    ("nthread", re.compile(r"\bnThread\s+(\d+)")),
    ("ngpus", re.compile(r"\bnGpus\s+(\d+)")),
    ("min_bytes", re.compile(r"\bminBytes\s+(\d+)")),
    ("max_bytes", re.compile(r"\bmaxBytes\s+(\d+)")),
    ("step", re.compile(r"\bstep:\s*(\d+)")),
    ("warmup_iters", re.compile(r"\bwarmup iters:\s*(\d+)")),
    ("iters", re.compile(r"(?<!warmup )(?<!agg )\biters:\s*(\d+)")),
    ("agg_iters", re.compile(r"\bagg iters:\s*(\d+)")),
    ("validation", re.compile(r"\bvalidation:\s*(\d+)")),
    ("graph", re.compile(r"\bgraph:\s*(\d+)")),
    ("unalign", re.compile(r"\bunalign:\s*(\d+)")),
)
_STEP_KIND = re.compile(r"\bstep:\s*\d+\((\w+)\)")
_RANK = re.compile(
    r"^#\s+Rank\s+(\d+)\s+(?:Group\s+(\d+)\s+)?Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)\s+\[([^\]]*)\]\s*(.*?)\s*$"
)
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s*(OK|FAILED)?", re.IGNORECASE)
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([-+0-9.eE]+|nan|inf|-nan)\s*(OK|FAILED)?", re.IGNORECASE)
_NCCL_BANNER = re.compile(r"NCCL version (\d+\.\d+\.\d+)(\S*)")
_NCCL_WARN = re.compile(r"\bNCCL WARN\b")
_ERROR_PATTERNS = re.compile(
    r"Test (?:NCCL|CUDA) failure|Test failure|NCCL error|Invalid number of GPUs"
    r"|error while loading shared libraries|mpirun (?:noticed|was unable|detected)"
    r"|ORTE was unable|PRTE has lost|prterun (?:noticed|was unable)|There are not enough slots"
    r"|Host key verification failed|Permission denied \(publickey|Could not resolve hostname"
    r"|ssh: connect to host|No such file or directory|command not found"
)
_HASH_ERROR = re.compile(r"^#\s*error:\s*\S")
_ROW_START = re.compile(r"^\s*\d+\s")
_COLUMN_HEADER_WORDS = ("size", "count", "busbw")
# Default column layout (nccl-tests >= 2.10), used when the output starts after its header.
_DEFAULT_HEADER = ["size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong",
                   "time", "algbw", "busbw", "#wrong"]


def nccl_version_from_code(code):
    """NCCL_VERSION_CODE -> 'x.y.z' (2.9 and later: x*10000+y*100+z; before: x*1000+y*100+z)."""
    if code is None:
        return None
    code = int(code)
    if code >= 20900:
        return "%d.%d.%d" % (code // 10000, (code % 10000) // 100, code % 100)
    return "%d.%d.%d" % (code // 1000, (code % 1000) // 100, code % 100)


def _layout(header_tokens):
    """Split a column header into (leading names, [block names...]) where each block is one of
    out-of-place / in-place (time, algbw, busbw, #wrong|error [, per-iteration columns])."""
    tokens = [t for t in header_tokens if t != "timestamp"]
    starts = [i for i, t in enumerate(tokens) if t in ("time", "cputime")]
    if not starts:
        return None
    lead = tokens[:starts[0]]
    blocks = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        blocks.append(tokens[start:end])
    return {"lead": lead, "blocks": blocks, "timestamp": "timestamp" in header_tokens,
            "width": len(tokens) + (2 if "timestamp" in header_tokens else 0)}


def _number(token):
    try:
        return float(token)
    except ValueError:
        return None


def _block_values(names, tokens):
    values = {}
    for name, token in zip(names, tokens):
        if name in ("time", "cputime"):
            values["time_us"] = _number(token)
        elif name == "algbw":
            values["algbw_gbs"] = _number(token)
        elif name == "busbw":
            values["busbw_gbs"] = _number(token)
        elif name == "#wrong":
            number = _number(token)
            values["wrong"] = None if number is None else int(number)
        elif name == "error":
            # Legacy nccl-tests: maximum relative error, not a count; judged through "Out of bounds values".
            values["error"] = _number(token)
            values["wrong"] = None
        else:
            values[name.strip("%").replace("%", "_pct")] = _number(token)
    values.setdefault("wrong", None)
    return values


def _parse_row(layout, line):
    tokens = line.split()
    if len(tokens) != layout["width"]:
        return None
    try:
        size = int(tokens[0])
    except ValueError:
        return None
    row = {"size": size, "count": None, "type": None, "redop": None, "root": None}
    lead = layout["lead"]
    for name, token in zip(lead, tokens[:len(lead)]):
        if name in ("count", "root"):
            try:
                row[name] = int(token)
            except ValueError:
                return None
        elif name in ("type", "redop"):
            row[name] = token
    position = len(lead)
    placements = ("out_of_place", "in_place")
    for index, names in enumerate(layout["blocks"][:2]):
        chunk = tokens[position:position + len(names)]
        position += len(names)
        values = _block_values(names, chunk)
        if values.get("busbw_gbs") is None or values.get("time_us") is None:
            return None
        row[placements[index]] = values
    if layout["timestamp"]:
        row["timestamp"] = " ".join(tokens[-2:])
    return row


def parse_output(text, stderr=""):
    """Parse nccl-tests output (stdout; stderr is only searched for warnings and errors).

    Returns a dict: nccl_tests_version, nccl_tests_commit, nccl_headers, nccl_library, nccl_version,
    nccl_version_banner, collective, concluded, config, ranks, format, columns, rows, out_of_bounds,
    out_of_bounds_status, avg_busbw_gbs, avg_busbw_status, warnings, errors, unparsed_rows.
    """
    parsed = {
        "nccl_tests_version": None,
        "nccl_tests_commit": None,
        "nccl_headers": None,
        "nccl_library": None,
        "nccl_version": None,
        "nccl_version_banner": None,
        "collective": None,
        "concluded": False,
        "config": {},
        "ranks": [],
        "format": None,
        "columns": None,
        "rows": [],
        "out_of_bounds": None,
        "out_of_bounds_status": None,
        "avg_busbw_gbs": None,
        "avg_busbw_status": None,
        "warnings": [],
        "errors": [],
        "unparsed_rows": [],
    }
    layout = None
    for raw in (text or "").splitlines():
        line = _TAG_PREFIX.sub("", raw.rstrip("\r\n"))
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = _VERSION.match(stripped)
            if match:
                parsed["nccl_tests_version"] = match.group(1)
                parsed["nccl_tests_commit"] = match.group(2)
                parsed["nccl_headers"] = int(match.group(3)) if match.group(3) else None
                parsed["nccl_library"] = int(match.group(4)) if match.group(4) else None
                continue
            match = _STARTING.match(stripped)
            if match:
                parsed["collective"] = match.group(1)
                continue
            match = _CONCLUDED.match(stripped)
            if match:
                parsed["concluded"] = True
                parsed["collective"] = parsed["collective"] or match.group(1)
                continue
            if "nThread" in stripped and "minBytes" in stripped:
                for name, pattern in _CONFIG_FIELDS:
                    found = pattern.search(stripped)
                    if found:
                        parsed["config"][name] = int(found.group(1))
                kind = _STEP_KIND.search(stripped)
                if kind:
                    parsed["config"]["step_kind"] = kind.group(1)
                continue
            match = _RANK.match(stripped)
            if match:
                parsed["ranks"].append({
                    "rank": int(match.group(1)),
                    "group": int(match.group(2)) if match.group(2) is not None else None,
                    "pid": int(match.group(3)),
                    "host": match.group(4),
                    "device": int(match.group(5)),
                    "bus_id": match.group(6),
                    "device_name": match.group(7),
                })
                continue
            match = _OOB.match(stripped)
            if match:
                parsed["out_of_bounds"] = int(match.group(1))
                parsed["out_of_bounds_status"] = (match.group(2) or "").upper() or None
                continue
            match = _AVG.match(stripped)
            if match:
                parsed["avg_busbw_gbs"] = _number(match.group(1))
                parsed["avg_busbw_status"] = (match.group(2) or "").upper() or None
                continue
            if _HASH_ERROR.match(stripped):
                parsed["errors"].append(stripped)
                continue
            tokens = stripped.lstrip("#").split()
            if all(word in tokens for word in _COLUMN_HEADER_WORDS):
                layout = _layout(tokens)
                if layout:
                    parsed["columns"] = tokens
                    errors_col = any("error" in block for block in layout["blocks"])
                    parsed["format"] = "legacy" if errors_col else "current"
                continue
            continue
        if _ROW_START.match(line):
            row = _parse_row(layout or _layout(_DEFAULT_HEADER), line)
            if row is not None:
                if parsed["format"] is None:
                    parsed["format"] = "current"
                parsed["rows"].append(row)
            else:
                parsed["unparsed_rows"].append(stripped)
            continue
        _scan_message(parsed, stripped)
    for raw in (stderr or "").splitlines():
        _scan_message(parsed, _TAG_PREFIX.sub("", raw).strip())
    if parsed["nccl_version"] is None and parsed["nccl_library"]:
        parsed["nccl_version"] = nccl_version_from_code(parsed["nccl_library"])
    return parsed


def _scan_message(parsed, line):
    if not line:
        return
    banner = _NCCL_BANNER.search(line)
    if banner and parsed["nccl_version_banner"] is None:
        parsed["nccl_version"] = banner.group(1)
        parsed["nccl_version_banner"] = banner.group(1) + banner.group(2)
    if _NCCL_WARN.search(line):
        parsed["warnings"].append(line)
    elif _ERROR_PATTERNS.search(line) and "NCCL INFO" not in line:
        parsed["errors"].append(line)


# ---------------------------------------------------------------------------------------------------------
# judgement


def _fmt_gbs(value):
    return "?" if value is None else "%.2f" % value


def _fmt_limit(value):
    """A threshold as given: 20.0 -> '20.00', 21.875 -> '21.875'."""
    if value is None:
        return "?"
    return "%.2f" % value if round(value, 2) == value else "%g" % value


def row_busbw(row):
    """The better of out-of-place and in-place bus bandwidth for one size."""
    values = [row.get(p, {}).get("busbw_gbs") for p in ("out_of_place", "in_place")]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def row_wrong(row):
    """Total wrong elements of one size, or None when not reported (N/A, legacy format)."""
    values = [row.get(p, {}).get("wrong") for p in ("out_of_place", "in_place")]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def judge(
    parsed,
    rc=0,
    outcome="ok",
    timeout_s=None,
    expected_ranks=None,
    expected_hosts=None,
    min_avg_busbw_gbs=DEFAULT_MIN_AVG_BUSBW_GBS,
    warn_avg_busbw_gbs=NVIDIA_WARN_AVG_BUSBW_GBS,
    line_rate_gbs=DEFAULT_LINE_RATE_GBS,
    fail_on_nccl_warnings=False,
):
    """Decide pass or fail. Returns dict(passed, failures, notes, line_rate_ratio, per_size).

    Criteria (each failure names it and its value): the launch finished (no timeout, rc 0, no test
    failure line), the output is complete (an 'Avg bus bandwidth' line), no wrong values in any size,
    no out-of-bounds values, the expected number of ranks on the expected number of hosts, and the
    average bus bandwidth at or above ``min_avg_busbw_gbs``.
    """
    failures = []
    notes = []
    rows = parsed.get("rows") or []
    avg = parsed.get("avg_busbw_gbs")

    if outcome == "timeout":
        failures.append(
            "timed out after %ss: the whole mpirun launch was killed (%d size rows parsed before that)"
            % (timeout_s, len(rows))
        )
    elif outcome == "killed":
        failures.append("mpirun was killed (rc %s, SIGKILL before the timeout: out of memory?)" % rc)
    elif rc not in (0, None):
        failures.append("mpirun exited with rc %s" % rc)
    if parsed.get("errors"):
        failures.append("nccl-tests or mpirun reported an error: %s" % parsed["errors"][0])

    if not rows:
        failures.append("no result rows in the output (nccl-tests did not get to the size sweep)")
    elif avg is None:
        failures.append(
            "truncated output: no 'Avg bus bandwidth' line after %d size rows (last size %s)"
            % (len(rows), format_size(rows[-1]["size"]))
        )
    if parsed.get("unparsed_rows"):
        notes.append("%d result line(s) could not be parsed (cut off?): %s"
                     % (len(parsed["unparsed_rows"]), parsed["unparsed_rows"][-1]))

    wrong_sizes = [row for row in rows if (row_wrong(row) or 0) > 0]
    if wrong_sizes:
        failures.append(
            "wrong values in %d size(s): %s"
            % (
                len(wrong_sizes),
                ", ".join(
                    "%s (out-of-place %s, in-place %s)"
                    % (format_size(row["size"]), row["out_of_place"].get("wrong"),
                       row.get("in_place", {}).get("wrong"))
                    for row in wrong_sizes[:4]
                ),
            )
        )
    if rows and all(row_wrong(row) is None for row in rows):
        if parsed.get("format") == "legacy":
            notes.append("legacy nccl-tests format: the 'error' column is a relative error, not a count; "
                         "correctness is judged by 'Out of bounds values' only")
        else:
            notes.append("#wrong is N/A: validation was off, so wrong values could not be checked")

    oob = parsed.get("out_of_bounds")
    if oob:
        failures.append("out-of-bounds values: %d (nccl-tests result check %s)"
                        % (oob, parsed.get("out_of_bounds_status") or "FAILED"))
    elif oob is None and avg is not None:
        notes.append("no 'Out of bounds values' line in the output")

    ranks = parsed.get("ranks") or []
    if ranks and expected_ranks and len(ranks) != expected_ranks:
        failures.append("the output lists %d rank(s), expected %d" % (len(ranks), expected_ranks))
    if ranks and expected_hosts:
        seen = sorted(set(r["host"] for r in ranks))
        if len(seen) < expected_hosts:
            failures.append(
                "ranks ran on %d host(s) (%s), expected %d: the test did not cross between the nodes"
                % (len(seen), ", ".join(seen), expected_hosts)
            )

    ratio = None
    if avg is not None:
        if line_rate_gbs:
            ratio = round(avg / line_rate_gbs, 4)
        if avg < min_avg_busbw_gbs:
            failures.append(
                "average bus bandwidth %s GB/s is below the minimum %s GB/s (%s of the %s GB/s line rate)"
                % (_fmt_gbs(avg), _fmt_limit(min_avg_busbw_gbs), _pct(ratio), _fmt_limit(line_rate_gbs))
            )
        elif warn_avg_busbw_gbs and avg < warn_avg_busbw_gbs:
            notes.append(
                "average bus bandwidth %s GB/s passes the %s GB/s minimum but is below the %s GB/s warning "
                "line NVIDIA uses for two Sparks" % (_fmt_gbs(avg), _fmt_limit(min_avg_busbw_gbs),
                                                     _fmt_limit(warn_avg_busbw_gbs))
            )

    if parsed.get("warnings"):
        message = "%d NCCL WARN line(s), first: %s" % (len(parsed["warnings"]), parsed["warnings"][0])
        if fail_on_nccl_warnings:
            failures.append(message)
        else:
            notes.append(message)

    per_size = []
    for row in rows:
        wrong = row_wrong(row)
        best = row_busbw(row)
        if wrong:
            verdict = "WRONG"
        elif best is not None and best < min_avg_busbw_gbs:
            verdict = "below"
        else:
            verdict = "ok"
        per_size.append({"size": row["size"], "busbw_gbs": best, "wrong": wrong, "verdict": verdict})

    return {
        "passed": not failures,
        "failures": failures,
        "notes": notes,
        "line_rate_ratio": ratio,
        "per_size": per_size,
    }


def _pct(ratio):
    return "?" if ratio is None else "%.1f%%" % (ratio * 100)


def summary_lines(parsed, judgement, binary, min_avg_busbw_gbs=DEFAULT_MIN_AVG_BUSBW_GBS,
                  line_rate_gbs=DEFAULT_LINE_RATE_GBS):
    """A short, one-screen table: verdict, average, then per size bus bandwidth and verdict."""
    lines = []
    verdict = "PASSED" if judgement["passed"] else "FAILED"
    lines.append(
        "nccl_test %s: %s  avg busbw %s GB/s (minimum %s, %s of %s GB/s line rate)"
        % (parsed.get("collective") or binary, verdict, _fmt_gbs(parsed.get("avg_busbw_gbs")),
           _fmt_limit(min_avg_busbw_gbs), _pct(judgement.get("line_rate_ratio")), _fmt_limit(line_rate_gbs))
    )
    ranks = parsed.get("ranks") or []
    hosts = []
    for rank in ranks:
        if rank["host"] not in hosts:
            hosts.append(rank["host"])
    lines.append(
        "ranks %s on %s | NCCL %s | nccl-tests %s"
        % (len(ranks) if ranks else "?", ", ".join(hosts) if hosts else "?",
           parsed.get("nccl_version") or "?", parsed.get("nccl_tests_version") or "?")
    )
    lines.append("%12s  %10s  %10s  %7s  %s" % ("size", "oop busbw", "ip busbw", "wrong", "verdict"))
    for row, size_verdict in zip(parsed.get("rows") or [], judgement.get("per_size") or []):
        wrong = size_verdict["wrong"]
        lines.append(
            "%12s  %10s  %10s  %7s  %s"
            % (format_size(row["size"]), _fmt_gbs(row["out_of_place"].get("busbw_gbs")),
               _fmt_gbs(row.get("in_place", {}).get("busbw_gbs")), "n/a" if wrong is None else wrong,
               size_verdict["verdict"])
        )
    lines.append(
        "out of bounds: %s | NCCL warnings: %d"
        % ("?" if parsed.get("out_of_bounds") is None else parsed["out_of_bounds"], len(parsed.get("warnings") or []))
    )
    for failure in judgement["failures"]:
        lines.append("FAIL: %s" % failure)
    for note in judgement.get("notes") or []:
        lines.append("NOTE: %s" % note)
    return lines
