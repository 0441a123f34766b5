"""backup-etcd.yml and restore-etcd.yml on the lab's real cluster (issue 14): etcd v3.5.24 as a kubeadm static pod,
with etcdctl and etcdutl in its image as in the real one. Back up, delete a namespace holding a ConfigMap and a
Secret (no real secret values), restore with the confirmation: the namespace and its objects are back. A restore
without the confirmation is refused and changes nothing; backups rotate by count. Runs after test_repairs.py (which
builds the cluster) and leaves a healthy cluster behind.
"""

import glob
import hashlib
import os

from conftest import api, node, node_ready, playbook, record_time, wait_for

NAMESPACE = "etcd-backup-test"
CONTROL_PLANE = "spark-2959"


def objects_present(client):
    from kubernetes.client.rest import ApiException

    try:
        client.read_namespace(NAMESPACE)
        config_map = client.read_namespaced_config_map("kept", NAMESPACE)
        secret = client.read_namespaced_secret("kept", NAMESPACE)
    except ApiException:
        return None
    return config_map, secret


def namespace_gone(client):
    from kubernetes.client.rest import ApiException

    try:
        client.read_namespace(NAMESPACE)
    except ApiException as exc:
        return exc.status == 404
    return False


def create_objects(client):
    from kubernetes import client as k8s

    client.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    client.create_namespaced_config_map(NAMESPACE, k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="kept"), data={"colour": "green"}))
    client.create_namespaced_secret(NAMESPACE, k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="kept"), string_data={"token": "not-a-real-secret"}))


def snapshots(directory):
    return sorted(glob.glob(os.path.join(str(directory), "etcd-snapshot-*.db")))


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_backup_delete_restore_brings_the_namespace_back(tmp_path):
    client = api()
    if not namespace_gone(client):
        client.delete_namespace(NAMESPACE)
        wait_for(lambda: namespace_gone(client), timeout=120, what="an old test namespace gone")
    create_objects(client)
    store = tmp_path / "backups"

    run = playbook("backup-etcd.yml", "-e", "etcd_backup_dir=%s" % store)
    assert run.rc == 0, run
    record_time("backup-etcd.yml", run.seconds)
    [snapshot] = snapshots(store)
    name = os.path.basename(snapshot)
    with open(snapshot + ".sha256") as handle:
        assert handle.read().split() == [sha256_of(snapshot), name]
    assert oct(os.stat(str(store)).st_mode & 0o777) == "0o700"
    assert oct(os.stat(snapshot).st_mode & 0o777) == "0o600"

    client.delete_namespace(NAMESPACE)
    wait_for(lambda: namespace_gone(client), timeout=180, what="the namespace deleted")

    # Refused without the confirmation, and with a confirmation that is not the snapshot's name: nothing changes.
    for extra in ([], ["-e", "restore_etcd_confirm=etcd-snapshot-other.db"]):
        refused = playbook("restore-etcd.yml", "-e", "etcd_backup_dir=%s" % store,
                           "-e", "etcd_backup_restore_snapshot=%s" % name, *extra)
        assert refused.rc != 0, refused
        assert "restore_etcd_confirm" in refused.output and "nothing was changed" in refused.output, refused
        assert snapshots(store) == [snapshot]  # no safety snapshot either
        assert namespace_gone(client)
    asides = node(CONTROL_PLANE, "ls -d /var/lib/etcd/member.before-restore-* 2>/dev/null || true").stdout.split()

    run = playbook("restore-etcd.yml", "-e", "etcd_backup_dir=%s" % store,
                   "-e", "etcd_backup_restore_snapshot=%s" % name, "-e", "restore_etcd_confirm=%s" % name)
    assert run.rc == 0, run
    record_time("restore-etcd.yml (safety snapshot, restore, /readyz)", run.seconds)
    client = api()
    config_map, secret = wait_for(lambda: objects_present(client), timeout=120, what="the namespace and objects back")
    assert config_map.data == {"colour": "green"}
    assert "token" in secret.data
    # The safety snapshot was taken; the old member directory was moved aside, not deleted, and the run said where.
    assert any(path.endswith("-pre-restore.db") for path in snapshots(store))
    now = node(CONTROL_PLANE, "ls -d /var/lib/etcd/member.before-restore-*").stdout.split()
    [aside] = sorted(set(now) - set(asides))
    assert aside in run.output
    for name_ in ("spark-2959", "spark-ba63"):
        wait_for(lambda n=name_: node_ready(api(), n) == "True", timeout=180, what="%s Ready after the restore" % name_)

    client.delete_namespace(NAMESPACE)
    node(CONTROL_PLANE, "rm -rf %s" % aside)  # the lab's own clean-up; the collection never deletes it


def test_check_mode_saves_nothing(tmp_path):
    store = tmp_path / "backups"
    run = playbook("backup-etcd.yml", "--check", "-e", "etcd_backup_dir=%s" % store)
    assert run.rc == 0, run
    assert "Would save" in run.output
    assert snapshots(store) == []


def test_backups_rotate_by_count(tmp_path):
    store = tmp_path / "backups"
    taken = []
    for dummy in range(3):
        run = playbook("backup-etcd.yml", "-e", "etcd_backup_dir=%s" % store, "-e", "etcd_backup_keep=2")
        assert run.rc == 0, run
        taken.append([path for path in snapshots(store) if path not in sum(taken, [])])
    # The newest two stay, each with its checksum file; the first is gone with its checksum.
    assert snapshots(store) == sorted(taken[1] + taken[2])
    assert not os.path.exists(taken[0][0]) and not os.path.exists(taken[0][0] + ".sha256")
    assert all(os.path.exists(path + ".sha256") for path in snapshots(store))
