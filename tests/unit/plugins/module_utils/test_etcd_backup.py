"""etcd_backup core (pure): snapshot names, rotation, `etcdutl snapshot status -w json` (our capture from the lab's
etcdutl), the etcd manifest's flags (kubeadm v1.31.14's own output for the inventory's control plane), the restore
plan and the argv."""

import datetime
import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import etcd_backup
from ansible_collections.dgx_spark.cluster.plugins.filter.etcd_snapshots_to_remove import (
    FilterModule, etcd_snapshots_to_remove)
from ansible.errors import AnsibleFilterError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


def manifest():
    return load("etcd", "kubeadm-v1.31.14-etcd-manifest.yaml")


# --- names ---------------------------------------------------------------------------------------------------------

def test_snapshot_name_is_utc_and_round_trips():
    name = etcd_backup.snapshot_name("spark-2959", NOW)
    assert name == "etcd-snapshot-spark-2959-20260102T030405Z.db"
    assert etcd_backup.parse_snapshot_name(name) == {"node": "spark-2959", "stamp": "20260102T030405Z", "label": ""}
    labelled = etcd_backup.snapshot_name("spark-2959", NOW, "pre-restore")
    assert labelled == "etcd-snapshot-spark-2959-20260102T030405Z-pre-restore.db"
    assert etcd_backup.parse_snapshot_name("/x/" + labelled)["label"] == "pre-restore"


@pytest.mark.parametrize("node,label", [("", ""), ("a/b", ""), ("spark-2959", "Bad Label"), ("spark-2959", "../x")])
def test_snapshot_name_refuses_bad_parts(node, label):
    with pytest.raises(ValueError):
        etcd_backup.snapshot_name(node, NOW, label)


@pytest.mark.parametrize("name", ["etcd-snapshot-spark-2959.db", "notes.txt", "etcd-snapshot-spark-2959-20260102T030405Z.db.sha256",
                                  "etcd-snapshot-spark-2959-2026-01-02.db", "other-20260102T030405Z.db"])
def test_other_names_are_not_ours(name):
    assert etcd_backup.parse_snapshot_name(name) is None


# --- rotation ------------------------------------------------------------------------------------------------------

def snapshots(*stamps):
    return ["/b/etcd-snapshot-spark-2959-%s.db" % s for s in stamps]


def test_rotation_keeps_the_newest_by_the_name_not_the_listing_order():
    files = snapshots("20260103T000000Z", "20260101T000000Z", "20260104T000000Z", "20260102T000000Z")
    assert etcd_backup.snapshots_to_remove(files, 2) == snapshots("20260101T000000Z", "20260102T000000Z")


def test_rotation_never_touches_other_files_or_protected_names_and_reads_find_results():
    files = [{"path": p} for p in snapshots("20260101T000000Z", "20260102T000000Z", "20260103T000000Z")]
    files += [{"path": "/b/notes.txt"}, {"path": "/b/etcd-snapshot-spark-2959-20260101T000000Z.db.sha256"}]
    protect = ["etcd-snapshot-spark-2959-20260101T000000Z.db"]
    # The protected one counts among the snapshots but stays.
    assert etcd_backup.snapshots_to_remove(files, 1, protect) == snapshots("20260102T000000Z")
    assert etcd_backup.snapshots_to_remove(files, 2, protect) == []


def test_rotation_with_fewer_than_keep_removes_nothing_and_refuses_keep_zero():
    assert etcd_backup.snapshots_to_remove(snapshots("20260101T000000Z"), 7) == []
    with pytest.raises(ValueError):
        etcd_backup.snapshots_to_remove(snapshots("20260101T000000Z"), 0)


def test_labelled_snapshots_rotate_with_the_others():
    files = ["/b/etcd-snapshot-spark-2959-20260101T000000Z-pre-reset.db"] + snapshots("20260102T000000Z")
    assert etcd_backup.snapshots_to_remove(files, 1) == ["/b/etcd-snapshot-spark-2959-20260101T000000Z-pre-reset.db"]


def test_the_filter_plugin_uses_the_core_and_reports_errors_as_filter_errors():
    assert FilterModule().filters()["etcd_snapshots_to_remove"] is etcd_snapshots_to_remove
    assert etcd_snapshots_to_remove(snapshots("20260101T000000Z", "20260102T000000Z"), 1) == snapshots("20260101T000000Z")
    with pytest.raises(AnsibleFilterError):
        etcd_snapshots_to_remove([], 0)


# --- parsers -------------------------------------------------------------------------------------------------------

def test_parse_snapshot_status_of_the_lab_etcdutl():
    status = etcd_backup.parse_snapshot_status(load("etcd", "etcdutl-v3.5.33-snapshot-status.json"))
    assert status == {"hash": 4043444556, "revision": 4, "total_keys": 9, "total_size": 20480, "version": None}


@pytest.mark.parametrize("text", ["", "Error: snapshot file not found", "[]", '{"foo": 1}'])
def test_parse_snapshot_status_refuses_anything_else(text):
    with pytest.raises(ValueError):
        etcd_backup.parse_snapshot_status(text)


def test_manifest_flags_of_kubeadm():
    flags = etcd_backup.parse_manifest_flags(manifest())
    assert flags["name"] == "spark-2959"
    assert flags["data-dir"] == "/var/lib/etcd"
    assert flags["initial-advertise-peer-urls"] == "https://192.168.86.38:2380"
    assert flags["initial-cluster"] == "spark-2959=https://192.168.86.38:2380"
    assert flags["client-cert-auth"] == "true"
    assert "etcd" not in flags and "path" not in flags  # the command itself and other YAML are not flags


def test_member_config_for_a_restore():
    config = etcd_backup.member_config(etcd_backup.parse_manifest_flags(manifest()))
    assert config == {"name": "spark-2959", "peer_urls": "https://192.168.86.38:2380",
                      "initial_cluster": "spark-2959=https://192.168.86.38:2380", "data_dir": "/var/lib/etcd"}


def test_member_config_refuses_multi_member_and_missing_flags():
    flags = etcd_backup.parse_manifest_flags(manifest())
    flags["initial-cluster"] += ",spark-ba63=https://192.168.86.39:2380"
    with pytest.raises(ValueError, match="spark-ba63"):
        etcd_backup.member_config(flags)
    with pytest.raises(ValueError, match="--name"):
        etcd_backup.member_config({"data-dir": "/var/lib/etcd", "initial-advertise-peer-urls": "https://x:2380"})


def test_container_ids():
    assert etcd_backup.container_ids(0, "abc\n\ndef\n", "") == ["abc", "def"]
    assert etcd_backup.container_ids(0, "", "") == []
    with pytest.raises(ValueError, match="connection refused"):
        etcd_backup.container_ids(1, "", "connect: connection refused")


@pytest.mark.parametrize("subdir", ["", "member", "proxy/x", "../x", "a/../../b"])
def test_snapshot_dir_refuses_etcd_own_directories_and_escapes(subdir):
    with pytest.raises(ValueError):
        etcd_backup.snapshot_dir("/var/lib/etcd", subdir)


def test_snapshot_dir_and_file_names():
    assert etcd_backup.snapshot_dir("/var/lib/etcd", "snapshots/") == "/var/lib/etcd/snapshots"
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            etcd_backup.check_file_name(bad)


# --- plan and argv -------------------------------------------------------------------------------------------------

def plan():
    config = etcd_backup.member_config(etcd_backup.parse_manifest_flags(manifest()))
    return etcd_backup.plan_restore(config, "/var/lib/etcd/snapshots/s.db", "20260102T030405Z",
                                    "/etc/kubernetes/manifests", etcd_backup.DEFAULT_STATIC_PODS)


def test_restore_plan_moves_aside_and_never_deletes():
    p = plan()
    assert p["member"] == "/var/lib/etcd/member"
    assert p["member_aside"] == "/var/lib/etcd/member.before-restore-20260102T030405Z"
    assert p["restore_dir"] == "/var/lib/etcd/restore-20260102T030405Z"
    assert p["manifests_aside"] == "/etc/kubernetes/manifests.etcd-restore-20260102T030405Z"
    assert [m["src"] for m in p["manifests"]][-1] == "/etc/kubernetes/manifests/etcd.yaml"
    assert all(not m["aside"].startswith("/etc/kubernetes/manifests/") for m in p["manifests"])
    steps = etcd_backup.restore_steps(p)
    assert "never deleted" in steps[3] and "member.before-restore-20260102T030405Z" in steps[3]
    assert not any("delete" in s and "never" not in s for s in steps)


def test_restore_command_is_what_the_lab_etcdutl_accepted():
    # The same argv (other URLs) restored our lab capture with etcdutl v3.5.33, and etcd v3.5.24 served the result.
    assert etcd_backup.restore_command(plan()) == [
        "etcdutl", "snapshot", "restore", "/var/lib/etcd/snapshots/s.db",
        "--data-dir", "/var/lib/etcd/restore-20260102T030405Z", "--name", "spark-2959",
        "--initial-cluster", "spark-2959=https://192.168.86.38:2380",
        "--initial-advertise-peer-urls", "https://192.168.86.38:2380",
        "--bump-revision", "1000000000", "--mark-compacted"]
    p = plan()
    p["bump_revision"] = 0
    assert "--bump-revision" not in etcd_backup.restore_command(p)


def test_etcdctl_and_crictl_argv():
    assert etcd_backup.save_command("https://127.0.0.1:2379", "/etc/kubernetes/pki/etcd", "/var/lib/etcd/s/x.db") == [
        "etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", "/etc/kubernetes/pki/etcd/ca.crt",
        "--cert", "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key", "/etc/kubernetes/pki/etcd/healthcheck-client.key", "snapshot", "save", "/var/lib/etcd/s/x.db"]
    assert etcd_backup.status_command("/x.db") == ["etcdutl", "snapshot", "status", "/x.db", "-w", "json"]
    assert etcd_backup.crictl_ps_argv("crictl", "unix:///c.sock", "etcd") == [
        "crictl", "--runtime-endpoint", "unix:///c.sock", "ps", "-q", "--label", "io.kubernetes.container.name=etcd",
        "--state", "Running"]
    assert etcd_backup.crictl_exec_argv("crictl", "unix:///c.sock", "abc", ["etcdutl", "version"]) == [
        "crictl", "--runtime-endpoint", "unix:///c.sock", "exec", "abc", "etcdutl", "version"]
