"""etcd_snapshot module: main() with a patched AnsibleModule on a temporary etcd data directory and manifests
directory. crictl answers like a node whose etcd runs (the kubeadm v1.31.14 manifest, its --data-dir pointed at the
temporary directory); `etcdutl snapshot status` answers with our lab capture; the exec'd commands that write are
played by the responder (a file for `snapshot save`, a member directory for `snapshot restore`)."""

import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import etcd_snapshot
from module_harness import ExitJson, FailJson, load, patch_exits, patch_run_command  # noqa: E402  (sibling helper)

OLD = "etcd-snapshot-spark-2959-20200101T000000Z.db"
OLDER = "etcd-snapshot-spark-2959-20190101T000000Z.db"
READ_ONLY = (("ps",), ("exec", "etcdutl", "snapshot", "status"), ("exec", "etcdctl", "endpoint", "health"))


def build(tmp_path):
    data = tmp_path / "var" / "lib" / "etcd"
    (data / "member" / "snap").mkdir(parents=True)
    (data / "member" / "snap" / "db").write_text("old")
    manifests = tmp_path / "etc" / "kubernetes" / "manifests"
    manifests.mkdir(parents=True)
    text = load("etcd", "kubeadm-v1.31.14-etcd-manifest.yaml").replace("/var/lib/etcd", str(data))
    (manifests / "etcd.yaml").write_text(text)
    for pod in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        (manifests / (pod + ".yaml")).write_text("kind: Pod\n")
    snaps = data / "snapshots"
    snaps.mkdir()
    for name in (OLD, OLDER):
        (snaps / name).write_text("x")
    (snaps / "notes.txt").write_text("mine")
    return {"data": str(data), "manifests": str(manifests), "snaps": str(snaps),
            "args": {"manifest": str(manifests / "etcd.yaml"), "manifests_dir": str(manifests)}}


def responder(env, running=True):
    def respond(argv):
        if argv[3] == "ps":
            name = argv[-3].split("=", 1)[1]
            pod_file = os.path.join(env["manifests"], name + ".yaml")
            return 0, ("cid-%s\n" % name) if running and os.path.exists(pod_file) else "", ""
        command = argv[5:]
        if command[:3] == ["etcdctl", "--endpoints", "https://127.0.0.1:2379"] and command[-3:-1] == ["snapshot", "save"]:
            with open(command[-1], "w") as handle:
                handle.write("snapshot")
            return 0, "", "Snapshot saved at %s" % command[-1]
        if command[:3] == ["etcdutl", "snapshot", "status"]:
            return 0, load("etcd", "etcdutl-v3.5.33-snapshot-status.json"), ""
        if command[:3] == ["etcdutl", "snapshot", "restore"]:
            restore_dir = command[command.index("--data-dir") + 1]
            os.makedirs(os.path.join(restore_dir, "member", "snap"))
            with open(os.path.join(restore_dir, "member", "snap", "db"), "w") as handle:
                handle.write("restored")
            return 0, "", ""
        if command[-2:] == ["endpoint", "health"]:
            return 0, "https://127.0.0.1:2379 is healthy", ""
        return 1, "", "unexpected %s" % argv

    return respond


def run(args, monkeypatch, respond, check_mode=False):
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    warnings = []
    patch_exits(monkeypatch, warnings)
    calls = patch_run_command(monkeypatch, respond)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    monkeypatch.setattr(etcd_snapshot.etcd_backup_io.time, "sleep", lambda s: None)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            etcd_snapshot.main()
    return caught.value.args[0], calls, warnings


def mutating(calls):
    """The calls that are not read-only (crictl ps, etcdutl snapshot status, etcdctl endpoint health)."""
    found = []
    for argv in calls:
        words = argv[3:4] if argv[3] == "ps" else [argv[3]] + argv[5:]
        if not any(tuple(w for w in words if not w.startswith("-") and "/" not in w)[:len(ro)] == ro
                   for ro in READ_ONLY):
            found.append(argv)
    return found


def tree(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, dirs, files in os.walk(path) for name in dirs + files)


def test_save_in_check_mode_reports_the_snapshot_and_rotation_and_changes_nothing(tmp_path, monkeypatch):
    env = build(tmp_path)
    before = tree(str(tmp_path))
    result, calls, dummy = run(dict(env["args"], keep=2), monkeypatch, responder(env), check_mode=True)
    assert result["changed"] is True and "failed" not in result, result
    assert result["snapshot"]["path"].startswith(env["snaps"] + "/etcd-snapshot-spark-2959-")
    assert result["removed"] == [os.path.join(env["snaps"], OLDER)]
    assert result["command"][:2] == ["etcdctl", "--endpoints"]
    assert mutating(calls) == [] and all(c[3] == "ps" for c in calls)
    assert tree(str(tmp_path)) == before


def test_save_runs_etcdctl_in_the_etcd_container_verifies_and_rotates(tmp_path, monkeypatch):
    env = build(tmp_path)
    result, calls, dummy = run(dict(env["args"], keep=2, label="pre-reset"), monkeypatch, responder(env))
    assert "failed" not in result, result
    path = result["snapshot"]["path"]
    assert path.endswith("-pre-reset.db") and os.path.isfile(path)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert result["snapshot"]["status"]["revision"] == 4
    # sha256 of the file the responder wrote ("snapshot")
    assert result["snapshot"]["sha256"] == "16a0eeb0791b6c92451fd284dd9f599e0a7dbe7f6ebea6e2d2d06c7f74aec112"
    save = [c for c in calls if "save" in c][0]
    assert save[:6] == ["/usr/bin/crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock", "exec",
                        "cid-etcd", "etcdctl"]
    assert save[-3:] == ["snapshot", "save", path]
    assert result["removed"] == [os.path.join(env["snaps"], OLDER)]
    assert sorted(os.listdir(env["snaps"])) == sorted([OLD, os.path.basename(path), "notes.txt"])


def test_save_never_overwrites(tmp_path, monkeypatch):
    env = build(tmp_path)
    result, calls, dummy = run(dict(env["args"], name=OLD), monkeypatch, responder(env))
    assert result["failed"] and "never overwritten" in result["msg"]
    assert mutating(calls) == []


def test_without_a_running_etcd_it_fails_naming_why(tmp_path, monkeypatch):
    env = build(tmp_path)
    result, calls, dummy = run(env["args"], monkeypatch, responder(env, running=False))
    assert result["failed"] and "no running etcd container" in result["msg"]


def test_restore_in_check_mode_verifies_and_reports_the_steps_without_changing_anything(tmp_path, monkeypatch):
    env = build(tmp_path)
    before = tree(str(tmp_path))
    result, calls, dummy = run(dict(env["args"], state="restore", name=OLD), monkeypatch, responder(env),
                               check_mode=True)
    assert result["changed"] is True and "failed" not in result, result
    assert result["snapshot"]["status"]["revision"] == 4
    assert result["member_aside"].startswith(env["data"] + "/member.before-restore-")
    assert "never deleted" in " ".join(result["steps"])
    assert result["command"][:3] == ["etcdutl", "snapshot", "restore"]
    assert mutating(calls) == []
    assert tree(str(tmp_path)) == before


def test_restore_swaps_the_member_directory_keeps_the_old_one_and_puts_the_manifests_back(tmp_path, monkeypatch):
    env = build(tmp_path)
    result, calls, dummy = run(dict(env["args"], state="restore", name=OLD), monkeypatch, responder(env))
    assert "failed" not in result, result
    with open(os.path.join(env["data"], "member", "snap", "db")) as handle:
        assert handle.read() == "restored"
    with open(os.path.join(result["member_aside"], "snap", "db")) as handle:
        assert handle.read() == "old"
    assert sorted(os.listdir(env["manifests"])) == [
        "etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]
    assert not os.path.exists(result["manifests_aside"])
    assert not any(name.startswith("restore-") for name in os.listdir(env["data"]))
    restore = [c for c in calls if "restore" in c][0]
    assert restore[4:8] == ["cid-etcd", "etcdutl", "snapshot", "restore"]


def test_restore_with_a_wrong_checksum_changes_nothing(tmp_path, monkeypatch):
    env = build(tmp_path)
    before = tree(str(tmp_path))
    result, calls, dummy = run(dict(env["args"], state="restore", name=OLD, sha256="0" * 64), monkeypatch,
                               responder(env))
    assert result["failed"] and "nothing was changed" in result["msg"]
    assert mutating(calls) == [] and tree(str(tmp_path)) == before


def test_restore_whose_pods_do_not_stop_puts_everything_back(tmp_path, monkeypatch):
    env = build(tmp_path)
    base = responder(env)

    def respond(argv):
        if argv[3] == "ps":
            return 0, "cid-stuck\n", ""  # the containers never go away
        return base(argv)

    result, calls, dummy = run(dict(env["args"], state="restore", name=OLD, stop_timeout=0), monkeypatch, respond)
    assert result["failed"] and "member directory was not touched" in result["msg"], result
    with open(os.path.join(env["data"], "member", "snap", "db")) as handle:
        assert handle.read() == "old"
    assert len(os.listdir(env["manifests"])) == 4
