# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the ``etcd_snapshot`` module and of the ``etcd_snapshots_to_remove`` filter (backup rotation).

kubeadm's etcd is a static pod whose image carries etcd, etcdctl and etcdutl, with etcd's data directory
(``--data-dir``, /var/lib/etcd) and /etc/kubernetes/pki/etcd mounted from the host at the same paths.  So the tools
run inside the running etcd container (``crictl exec``) and the snapshots live in a sub-directory of the data
directory, which is the same path on the host and in the container.

Pure: snapshot names (UTC timestamps), ``etcdutl snapshot status -w json``, the etcd manifest's command flags, the
rotation choice, the restore plan, results and argv builders.  No Ansible imports and no I/O: etcd_backup_io.py runs
the commands and moves the files; the tests drive this file with plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath
import re

PREFIX = "etcd-snapshot"
SUFFIX = ".db"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# etcd-snapshot-<node>-<UTC timestamp>[-<label>].db; the node name may hold hyphens, the timestamp anchors it.
NAME_RE = re.compile(r"^%s-(?P<node>.+?)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>[a-z0-9][a-z0-9-]*))?%s$"
                     % (re.escape(PREFIX), re.escape(SUFFIX)))
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FLAG_RE = re.compile(r"^\s*-\s+['\"]?--(?P<key>[a-z0-9-]+)(?:=(?P<value>.*?))?['\"]?\s*$")
CONTAINER_LABEL = "io.kubernetes.container.name"
DEFAULT_ENDPOINT = "https://127.0.0.1:2379"
DEFAULT_PKI_DIR = "/etc/kubernetes/pki/etcd"
DEFAULT_MANIFESTS_DIR = "/etc/kubernetes/manifests"
# The static pods stopped for a restore: etcd and everything that talks to it or caches what it holds.
DEFAULT_STATIC_PODS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"]
# Added to the restored revision so that every watcher's cache is older than the restored data and is rebuilt
# (the value etcd's own restore documentation uses for Kubernetes).
DEFAULT_BUMP_REVISION = 1000000000


# ---------------------------------------------------------------------------------------------
# names and rotation
# ---------------------------------------------------------------------------------------------

def snapshot_name(node, now, label=""):
    """``etcd-snapshot-<node>-<UTC timestamp>[-<label>].db`` for ``now`` (a UTC datetime)."""
    if not node or "/" in node:
        raise ValueError("a snapshot name needs a node name without '/': %r" % node)
    if label and not LABEL_RE.match(label):
        raise ValueError("label %r: lower-case letters, digits and '-' only" % label)
    return "%s-%s-%s%s%s" % (PREFIX, node, now.strftime(TIMESTAMP_FORMAT), "-" + label if label else "", SUFFIX)


def parse_snapshot_name(name):
    """{node, stamp, label} of a name this collection gives a snapshot, or None for any other name."""
    m = NAME_RE.match(posixpath.basename(name or ""))
    if not m:
        return None
    return {"node": m.group("node"), "stamp": m.group("stamp"), "label": m.group("label") or ""}


def snapshots_to_remove(files, keep, protect=None):
    """Which snapshots rotation removes: all but the ``keep`` newest of the files named like our snapshots.

    ``files``: paths, or dicts with ``path`` (as ansible.builtin.find returns them).  Files named otherwise are never
    chosen; nor are the basenames in ``protect`` (they count among the snapshots, but stay even when older than the
    ``keep`` newest).  Newest by the UTC timestamp in the name (the path breaks ties), not by modification time, which
    a copy resets.  Returns paths, oldest first."""
    if keep is None or int(keep) < 1:
        raise ValueError("keep must be 1 or more (got %r): rotation never removes every snapshot" % keep)
    protect = set(protect or [])
    ours = []
    for item in files or []:
        path = item.get("path") if isinstance(item, dict) else item
        parsed = parse_snapshot_name(path)
        if parsed:
            ours.append((parsed["stamp"], path))
    ours.sort(reverse=True)
    return [path for dummy, path in reversed(ours[int(keep):]) if posixpath.basename(path) not in protect]


# ---------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------

def parse_snapshot_status(text):
    """``etcdutl snapshot status -w json`` -> {hash, revision, total_keys, total_size, version}.

    Raises ValueError when the output is not the JSON object etcdutl prints."""
    try:
        data = json.loads(text or "")
    except ValueError:
        raise ValueError("etcdutl snapshot status printed no JSON: %r" % (text or "")[:200])
    if not isinstance(data, dict) or "revision" not in data or "hash" not in data:
        raise ValueError("etcdutl snapshot status printed no status object: %r" % (text or "")[:200])
    return {"hash": data.get("hash"), "revision": data.get("revision"), "total_keys": data.get("totalKey"),
            "total_size": data.get("totalSize"), "version": data.get("version")}


def parse_manifest_flags(text):
    """The ``--key=value`` items of the etcd static pod manifest's command (as kubeadm writes them, one per line).

    Returns {key: value} (a flag without ``=`` maps to "true"; a repeated flag keeps its last value)."""
    flags = {}
    for line in (text or "").splitlines():
        m = FLAG_RE.match(line)
        if m:
            value = m.group("value")
            flags[m.group("key")] = "true" if value is None else value
    return flags


def parse_initial_cluster(value):
    """``name=url,name=url`` -> [(name, url)]."""
    members = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, url = part.partition("=")
        if not sep or not name or not url:
            raise ValueError("--initial-cluster item %r is not name=url" % part)
        members.append((name, url))
    return members


def member_config(flags):
    """What a restore needs from the manifest: name, peer URLs, data directory (one-member clusters only).

    Raises ValueError naming what is missing or unsupported."""
    missing = [k for k in ("name", "initial-advertise-peer-urls", "data-dir") if not flags.get(k)]
    if missing:
        raise ValueError("the etcd manifest has no %s" % ", ".join("--" + k for k in missing))
    members = parse_initial_cluster(flags.get("initial-cluster") or "")
    others = [name for name, dummy in members if name != flags["name"]]
    if others:
        raise ValueError("the etcd manifest's --initial-cluster names other members (%s): restoring a multi-member "
                         "etcd is not supported (kubeadm's stacked etcd on one control plane has one member)"
                         % ", ".join(others))
    data_dir = flags["data-dir"].rstrip("/") or "/"
    if not data_dir.startswith("/") or data_dir == "/":
        raise ValueError("--data-dir %r is not an absolute directory" % flags["data-dir"])
    peer_urls = flags["initial-advertise-peer-urls"]
    return {"name": flags["name"], "peer_urls": peer_urls,
            "initial_cluster": ",".join("%s=%s" % (flags["name"], url) for url in peer_urls.split(",") if url),
            "data_dir": data_dir}


def container_ids(rc, out, err):
    """The ids ``crictl ps -q`` printed; raises ValueError when crictl failed."""
    if rc != 0:
        raise ValueError("crictl ps rc %s: %s" % (rc, (err or out or "").strip()[:300]))
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# paths and plans
# ---------------------------------------------------------------------------------------------

def snapshot_dir(data_dir, subdir):
    """The snapshot directory inside etcd's data directory (host and container see the same path)."""
    subdir = (subdir or "").strip("/")
    if not subdir or ".." in subdir.split("/") or subdir.split("/")[0] in ("member", "proxy"):
        raise ValueError("snapshot_subdir %r must be a relative directory other than member/ and proxy/" % subdir)
    return posixpath.join(data_dir, subdir)


def check_file_name(name):
    """A snapshot file name: no directory part, not hidden."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError("snapshot name %r must be a plain file name" % name)
    return name


def plan_restore(config, snapshot_path, stamp, manifests_dir, static_pods, bump_revision=DEFAULT_BUMP_REVISION):
    """The restore, step by step (state in, actions out).

    ``config``: member_config(); ``stamp``: the UTC timestamp that names the directories this restore makes.
    The old member directory is moved aside (never deleted) to ``<data_dir>/member.before-restore-<stamp>``; the
    manifests wait in ``<manifests_dir>.etcd-restore-<stamp>`` (outside the directory the kubelet reads)."""
    data_dir = config["data_dir"]
    restore_dir = posixpath.join(data_dir, "restore-%s" % stamp)
    aside_dir = manifests_dir.rstrip("/") + ".etcd-restore-%s" % stamp
    return {
        "snapshot": snapshot_path,
        "member": posixpath.join(data_dir, "member"),
        "restore_dir": restore_dir,
        "restored_member": posixpath.join(restore_dir, "member"),
        "member_aside": posixpath.join(data_dir, "member.before-restore-%s" % stamp),
        "manifests_aside": aside_dir,
        "manifests": [{"name": pod, "src": posixpath.join(manifests_dir, pod + ".yaml"),
                       "aside": posixpath.join(aside_dir, pod + ".yaml")} for pod in static_pods],
        "name": config["name"],
        "initial_cluster": config["initial_cluster"],
        "peer_urls": config["peer_urls"],
        "bump_revision": bump_revision,
    }


def restore_steps(plan):
    """The plan in words, in order (the module's result and its check-mode report)."""
    steps = ["etcdutl snapshot restore %s into %s (member %s, --initial-cluster %s%s)"
             % (plan["snapshot"], plan["restore_dir"], plan["name"], plan["initial_cluster"],
                ", revision bumped by %d and marked compacted" % plan["bump_revision"] if plan["bump_revision"] else "")]
    steps.append("stop the static pods %s: move their manifests to %s"
                 % (", ".join(m["name"] for m in plan["manifests"]), plan["manifests_aside"]))
    steps.append("wait until their containers are gone")
    steps.append("move %s aside to %s (kept, never deleted)" % (plan["member"], plan["member_aside"]))
    steps.append("move %s to %s" % (plan["restored_member"], plan["member"]))
    steps.append("put the manifests back in %s and wait until etcd answers" % posixpath.dirname(
        plan["manifests"][0]["src"]) if plan["manifests"] else "wait until etcd answers")
    return steps


# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

def crictl_ps_argv(crictl, cri_socket, container_name, running=True):
    argv = [crictl, "--runtime-endpoint", cri_socket, "ps", "-q", "--label", "%s=%s" % (CONTAINER_LABEL, container_name)]
    if running:
        argv += ["--state", "Running"]
    return argv


def crictl_exec_argv(crictl, cri_socket, container_id, command):
    return [crictl, "--runtime-endpoint", cri_socket, "exec", container_id] + list(command)


def tls_flags(endpoint, pki_dir):
    return ["--endpoints", endpoint, "--cacert", posixpath.join(pki_dir, "ca.crt"),
            "--cert", posixpath.join(pki_dir, "healthcheck-client.crt"),
            "--key", posixpath.join(pki_dir, "healthcheck-client.key")]


def save_command(endpoint, pki_dir, path):
    return ["etcdctl"] + tls_flags(endpoint, pki_dir) + ["snapshot", "save", path]


def health_command(endpoint, pki_dir):
    return ["etcdctl"] + tls_flags(endpoint, pki_dir) + ["endpoint", "health"]


def status_command(path):
    return ["etcdutl", "snapshot", "status", path, "-w", "json"]


def restore_command(plan):
    command = ["etcdutl", "snapshot", "restore", plan["snapshot"], "--data-dir", plan["restore_dir"],
               "--name", plan["name"], "--initial-cluster", plan["initial_cluster"],
               "--initial-advertise-peer-urls", plan["peer_urls"]]
    if plan["bump_revision"]:
        command += ["--bump-revision", str(plan["bump_revision"]), "--mark-compacted"]
    return command


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

def save_result(path, name, container_id, command, check_mode, status=None, sha256=None, size=None, removed=None):
    snapshot = {"path": path, "name": name, "sha256": sha256, "size": size, "status": status}
    result = {"changed": True, "snapshot": snapshot,
              "container_id": container_id, "command": command, "removed": list(removed or [])}
    if check_mode:
        result["msg"] = "would save a snapshot of etcd (container %s) to %s" % (container_id, path)
    return result
