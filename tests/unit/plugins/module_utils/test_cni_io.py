"""cni I/O layer (cni_io): the host helpers on temporary directories, and real namespaces.

test_real_namespaces_* build real network namespaces with unshare (root only, skipped elsewhere): one with a
process in it, one without, and a plain file, and check that observation plus planning keeps the live one.
"""

import errno
import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni, cni_io

LIVE_ID = "e98c6d0d5c306402e1887c6b1a41d062b08122a18f665a2ac2d12b1408dc3c69"
DEAD_ID = "e0f6665744e6f48928559cbfb3662c9d21a009331801da410c8152b2d37cdd0e"


def kept_names(plan, kind=None):
    return [k["name"] for k in plan["kept"] if kind is None or k["kind"] == kind]


# ---------------------------------------------------------------------------------------------
# host helpers on temporary directories
# ---------------------------------------------------------------------------------------------

def test_observe_netns_plain_files(tmp_path):
    d = tmp_path / "netns"
    d.mkdir()
    (d / "cni-old").write_text("")
    (d / "cni-new").write_text("")
    (d / "other-ns").write_text("")
    old = time.time() - 3600
    os.utime(str(d / "cni-old"), (old, old))
    found = cni_io.observe_netns([str(d), str(d) + "/", str(tmp_path / "missing")], time.time(), nsfs_dev=-1)
    assert [f["name"] for f in found] == ["cni-new", "cni-old"]  # other-ns ignored, dir read once
    assert all(f["nsfs"] is False and f["error"] is None for f in found)
    assert found[1]["age"] > 3000 and found[0]["age"] < 60


def test_observe_netns_reports_eio(tmp_path, monkeypatch):
    d = tmp_path / "netns"
    d.mkdir()
    (d / "cni-eio").write_text("")
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        if str(path).endswith("cni-eio"):
            raise OSError(errno.EIO, "Input/output error")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(cni_io.os, "stat", fake_stat)
    found = cni_io.observe_netns([str(d)], time.time(), nsfs_dev=-1)
    assert found[0]["error"] == "EIO: Input/output error"
    assert cni.plan_cleanup({"netns": found, "live": {}})["remove"]["netns"] == [str(d / "cni-eio")]


def test_observe_live_netns_fake_proc(tmp_path):
    proc = tmp_path / "proc"
    for pid, target in (("1", "net:[111]"), ("42", "net:[222]")):
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "fd").mkdir()
        (proc / pid / "ns" / "net").write_text("")
        os.symlink(target, str(proc / pid / "fd" / "3"))
        os.symlink("/dev/null", str(proc / pid / "fd" / "0"))
    (proc / "self").mkdir()
    live, unreadable = cni_io.observe_live_netns(str(proc), nsfs_dev=None)
    assert unreadable == []
    assert live[222] == [42] and live[111] == [1]
    assert len(live) == 4  # two fd targets + the two ns/net files' own inodes


def test_observe_live_netns_permission_denied(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    (proc / "7" / "ns").mkdir(parents=True)
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        if "/7/ns/net" in str(path):
            raise OSError(errno.EACCES, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(cni_io.os, "stat", fake_stat)
    live, unreadable = cni_io.observe_live_netns(str(proc))
    assert unreadable == [7] and live == {}


def test_observe_state_entries(tmp_path):
    networks = tmp_path / "networks" / "k8s-pod-network"
    networks.mkdir(parents=True)
    (networks / "10.244.1.7").write_text("%s\r\neth0" % DEAD_ID)
    (networks / "lock").write_text("")
    (networks / "deeper").mkdir()
    (networks / "deeper" / "ignored").write_text(DEAD_ID)
    results = tmp_path / "results"
    results.mkdir()
    (results / ("k8s-pod-network-%s-eth0" % LIVE_ID)).write_text("{}")
    entries = cni_io.observe_state_entries([str(tmp_path / "networks"), str(results), str(tmp_path / "missing")])
    by_name = dict((e["name"], e["container_id"]) for e in entries)
    assert by_name == {"10.244.1.7": DEAD_ID, "lock": None, "k8s-pod-network-%s-eth0" % LIVE_ID: LIVE_ID}


class FakeRunner(object):
    def __init__(self, rc=0):
        self.calls = []
        self.rc = rc

    def run(self, argv, check=True, timeout=None, data=None, msg=None):
        self.calls.append(argv)
        return self.rc, "", "" if self.rc == 0 else "umount: not mounted"


def test_remove_netns_file(tmp_path):
    path = tmp_path / "cni-x"
    path.write_text("")
    runner = FakeRunner()
    assert cni_io.remove_netns_file(str(path), runner, "umount", {str(path)}) is None
    assert runner.calls == [["umount", "-l", str(path)]]
    assert not path.exists()
    path.write_text("")
    runner = FakeRunner()
    assert cni_io.remove_netns_file(str(path), runner, "umount", set()) is None
    assert runner.calls == [] and not path.exists()
    assert cni_io.remove_netns_file(str(path), runner, "umount", set()) is None  # already gone
    path.write_text("")
    failing = FakeRunner(rc=32)
    assert "umount -l failed (rc 32)" in cni_io.remove_netns_file(str(path), failing, "umount", {str(path)})
    assert path.exists()


def test_remove_state_path(tmp_path):
    f = tmp_path / "entry"
    f.write_text("x")
    assert cni_io.remove_state_path(str(f)) is None and not f.exists()
    assert cni_io.remove_state_path(str(f)) is None


# ---------------------------------------------------------------------------------------------
# real namespaces (root only)
# ---------------------------------------------------------------------------------------------

def _can_make_namespaces():
    return os.geteuid() == 0 and shutil.which("unshare") and shutil.which("mount") and shutil.which("umount")


@pytest.fixture
def real_namespaces(tmp_path):
    if not _can_make_namespaces():
        pytest.skip("needs root, unshare and mount")
    d = tmp_path / "netns"
    d.mkdir()
    mounted = []
    procs = []

    def sh(*argv):
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)

    if sh("mount", "--bind", str(d), str(d)).returncode != 0:
        pytest.skip("cannot bind-mount here")
    mounted.append(str(d))
    try:
        if sh("mount", "--make-private", str(d)).returncode != 0:
            pytest.skip("cannot make the mount private")
        for name in ("cni-live", "cni-stale", "cni-broken"):
            (d / name).write_text("")
        if sh("unshare", "--net=%s" % (d / "cni-stale"), "true").returncode != 0:
            pytest.skip("unshare --net=FILE not permitted")
        mounted.insert(0, str(d / "cni-stale"))
        proc = subprocess.Popen(["unshare", "--net=%s" % (d / "cni-live"), "sleep", "60"])
        procs.append(proc)
        mounted.insert(0, str(d / "cni-live"))
        deadline = time.time() + 10
        while time.time() < deadline and os.stat(str(d / "cni-live")).st_dev != cni_io.nsfs_device():
            time.sleep(0.1)
        yield d
    finally:
        for proc in procs:
            proc.kill()  # our own child, by its pid
            proc.wait()
        for path in mounted:
            sh("umount", "-l", path)


def test_real_namespaces_observed_and_planned(real_namespaces):
    d = str(real_namespaces)
    nsfs_dev = cni_io.nsfs_device()
    found = dict((f["name"], f) for f in cni_io.observe_netns([d], time.time(), nsfs_dev))
    assert found["cni-live"]["nsfs"] is True and found["cni-stale"]["nsfs"] is True
    assert found["cni-broken"]["nsfs"] is False
    live, unreadable = cni_io.observe_live_netns(nsfs_dev=nsfs_dev)
    assert found["cni-live"]["inode"] in live
    assert found["cni-stale"]["inode"] not in live
    facts = {"netns": list(found.values()), "live": live, "live_complete": not unreadable, "unreadable": unreadable}
    plan = cni.plan_cleanup(facts, min_age=0)
    assert kept_names(plan, "netns")[0] == os.path.join(d, "cni-live")
    if unreadable:  # e.g. a sandboxed build machine whose pid 1 cannot be inspected: only the broken file goes
        assert plan["remove"]["netns"] == [os.path.join(d, "cni-broken")]
    # with a complete scan (our namespaces hold no unreadable process): the stale namespace goes too
    facts["live_complete"] = True
    plan = cni.plan_cleanup(facts, min_age=0)
    assert sorted(plan["remove"]["netns"]) == [os.path.join(d, "cni-broken"), os.path.join(d, "cni-stale")]
    assert kept_names(plan, "netns") == [os.path.join(d, "cni-live")]
    # and nothing is judged unused while young
    assert cni.plan_cleanup(facts, min_age=3600)["remove"]["netns"] == []
