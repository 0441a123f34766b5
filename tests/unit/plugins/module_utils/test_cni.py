"""cni core: parsers on real captures (ip netns from k3s/rke2 issues and our own lab capture, crictl pods -o json,
ip -j link show), the planner's table, and the host helpers on temporary directories.

test_real_namespaces_* build real network namespaces with unshare (root only, skipped elsewhere): one with a
process in it, one without, and a plain file, and check that observation plus planning keeps the live one.
"""

import errno
import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import cni

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
LIVE_ID = "e98c6d0d5c306402e1887c6b1a41d062b08122a18f665a2ac2d12b1408dc3c69"  # SANDBOX_READY in the crictl capture
NOTREADY_ID = "68c7b8ee3bae91badbec7fdb6ed8f867f04897213286e63ecaa337bf9db6fa6e"  # SANDBOX_NOTREADY
DEAD_ID = "e0f6665744e6f48928559cbfb3662c9d21a009331801da410c8152b2d37cdd0e"  # from the kubelet journal capture
LAB_LIVE = "cni-11111111-1111-1111-1111-111111111111"
LAB_STALE = "cni-22222222-2222-2222-2222-222222222222"
LAB_BROKEN = "cni-33333333-3333-3333-3333-333333333333"


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


# ---------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------

def test_parse_ip_netns_healthy_k3s():
    parsed = cni.parse_ip_netns(load("ip-netns", "k3s-healthy-six-cni-netns.txt"))
    assert parsed["errors"] == []
    assert len(parsed["netns"]) == 6
    assert parsed["netns"][0] == {"name": "cni-45b9e5e5-8d10-10e3-d4cc-8d3fadea0ee0", "id": 2}
    assert sorted(n["id"] for n in parsed["netns"]) == [1, 2, 3, 4, 5, 6]


def test_parse_ip_netns_stale_rke2():
    parsed = cni.parse_ip_netns(load("ip-netns", "rke2-stale-peer-netns-invalid.txt"))
    assert len(parsed["errors"]) == 6
    assert set(parsed["errors"]) == {"Error: Peer netns reference is invalid."}
    without_id = [n["name"] for n in parsed["netns"] if n["id"] is None]
    assert without_id == ["cni-b61067e2-ec37-9b02-971c-166c54468ea4", "cni-f4d1dab9-9124-c063-0b1a-7d3a78694ceb",
                          "cni-b0dbfb39-fe4b-9fb7-3f2e-f5416f230d0c"]
    assert len(parsed["netns"]) == 6


def test_parse_ip_netns_lab_capture():
    parsed = cni.parse_ip_netns(load("ip-netns", "lab-cni-live-stale-broken.ip-netns.txt"))
    assert parsed["errors"] == ["Error: Peer netns reference is invalid."] * 2
    assert parsed["netns"] == [{"name": LAB_BROKEN, "id": None}, {"name": LAB_STALE, "id": 1},
                               {"name": LAB_LIVE, "id": 0}]


def test_parse_crictl_pods_json():
    pods = cni.parse_crictl_pods_json(load("crictl", "pods-json-ready-and-notready.txt"))
    assert [(p["id"], p["state"]) for p in pods] == [(LIVE_ID, "SANDBOX_READY"), (NOTREADY_ID, "SANDBOX_NOTREADY")]
    assert pods[1]["namespace"] == "kube-system"
    assert cni.parse_crictl_pods_json('{"items": []}') == []


def test_parse_ip_link_json_lab_capture():
    links = cni.parse_ip_link_json(load("ip-netns", "lab-cni-live-stale-broken.link.json"))
    assert [(lk["ifname"], lk["link_netnsid"]) for lk in links] == [
        ("lo", None), ("cali1111aaaaaaa", 0), ("cali2222bbbbbbb", 1), ("vxlan.calico", None)]


def test_parse_mountinfo():
    text = ("22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "133 22 0:4 net:[4026532496] /run/netns/cni-2222 rw shared:5 - nsfs nsfs rw\n"
            "140 22 0:50 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc\\0401/mount rw - ext4 /dev/sdb rw\n")
    assert cni.parse_mountinfo(text) == ["/", "/run/netns/cni-2222",
                                         "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc 1/mount"]


@pytest.mark.parametrize("name,content,expected", [
    ("k8s-pod-network-%s-eth0" % DEAD_ID, None, DEAD_ID),
    ("10.244.1.7", "%s\r\neth0" % DEAD_ID, DEAD_ID),
    ("10.244.1.8", DEAD_ID, DEAD_ID),
    ("cache-entry", '{"kind": "cniCacheV1", "containerId": "%s", "ifName": "eth0"}' % DEAD_ID, DEAD_ID),
    ("lock", "", None),
    ("last_reserved_ip.0", "10.244.1.8", None),
    ("garbage", "not an id", None),
    ("short-abc123-eth0", None, None),
])
def test_container_id_from_entry(name, content, expected):
    assert cni.container_id_from_entry(name, content) == expected


# ---------------------------------------------------------------------------------------------
# planner
# ---------------------------------------------------------------------------------------------

def ns(name, inode=None, nsfs=True, error=None, age=3600, path=None):
    return {"name": name, "path": path or "/run/netns/" + name, "inode": inode, "nsfs": nsfs, "error": error,
            "age": age}


def lab_facts(**overrides):
    """The lab capture as the module would observe it: live has a process, stale none, broken is a plain file."""
    ids = dict((n["name"], n["id"]) for n in cni.parse_ip_netns(
        load("ip-netns", "lab-cni-live-stale-broken.ip-netns.txt"))["netns"])
    facts = {
        "netns": [ns(LAB_BROKEN, inode=2146398, nsfs=False), ns(LAB_STALE, inode=4026532496),
                  ns(LAB_LIVE, inode=4026532565)],
        "live": {4026532565: [27521], 4026531840: [1]},
        "live_complete": True,
        "netns_ids": ids,
        "sandboxes": [LIVE_ID, NOTREADY_ID],
        "state_entries": [
            {"path": "/var/lib/cni/results/k8s-pod-network-%s-eth0" % LIVE_ID,
             "name": "k8s-pod-network-%s-eth0" % LIVE_ID, "container_id": LIVE_ID},
            {"path": "/var/lib/cni/results/k8s-pod-network-%s-eth0" % DEAD_ID,
             "name": "k8s-pod-network-%s-eth0" % DEAD_ID, "container_id": DEAD_ID},
            {"path": "/var/lib/cni/networks/k8s-pod-network/10.244.1.9", "name": "10.244.1.9",
             "container_id": NOTREADY_ID},
            {"path": "/var/lib/cni/networks/k8s-pod-network/lock", "name": "lock", "container_id": None},
            {"path": "/var/lib/cni/networks/k8s-pod-network/odd", "name": "odd", "container_id": None},
        ],
        "links": cni.parse_ip_link_json(load("ip-netns", "lab-cni-live-stale-broken.link.json")),
    }
    facts.update(overrides)
    return facts


def kept_names(plan, kind=None):
    return [k["name"] for k in plan["kept"] if kind is None or k["kind"] == kind]


def test_plan_lab_capture_only_stale():
    plan = cni.plan_cleanup(lab_facts())
    assert plan["remove"]["netns"] == ["/run/netns/" + LAB_BROKEN, "/run/netns/" + LAB_STALE]
    assert kept_names(plan, "netns") == ["/run/netns/" + LAB_LIVE]
    assert plan["remove"]["paths"] == ["/var/lib/cni/results/k8s-pod-network-%s-eth0" % DEAD_ID]
    assert plan["remove"]["links"] == ["cali2222bbbbbbb"]
    assert sorted(kept_names(plan, "link")) == ["cali1111aaaaaaa", "vxlan.calico"]
    reasons = dict((k["name"], k["reason"]) for k in plan["kept"])
    assert reasons["/run/netns/" + LAB_LIVE] == "in use by running process(es) 27521"
    assert reasons["/var/lib/cni/networks/k8s-pod-network/lock"] == "IPAM bookkeeping file"
    assert reasons["/var/lib/cni/networks/k8s-pod-network/10.244.1.9"].startswith("sandbox 68c7b8ee3bae9 exists")
    assert reasons["/var/lib/cni/networks/k8s-pod-network/odd"] == "no container id found in it"
    assert "only_stale=false" in reasons["vxlan.calico"]


def test_plan_every_item_in_exactly_one_list():
    for only_stale in (True, False):
        facts = lab_facts()
        plan = cni.plan_cleanup(facts, only_stale=only_stale)
        seen = plan["remove"]["netns"] + plan["remove"]["paths"] + plan["remove"]["links"] + kept_names(plan)
        observed = ([n["path"] for n in facts["netns"]] + [e["path"] for e in facts["state_entries"]]
                    + [lk["ifname"] for lk in facts["links"] if lk["ifname"] != "lo"])
        assert sorted(seen) == sorted(observed)


@pytest.mark.parametrize("min_age", [0, 60, 10 ** 9])
@pytest.mark.parametrize("complete", [True, False])
def test_never_touches_a_namespace_a_running_sandbox_uses(min_age, complete):
    facts = lab_facts(live_complete=complete)
    plan = cni.plan_cleanup(facts, only_stale=True, min_age=min_age)
    assert "/run/netns/" + LAB_LIVE not in plan["remove"]["netns"]
    assert "cali1111aaaaaaa" not in plan["remove"]["links"]
    assert "/run/netns/" + LAB_LIVE in kept_names(plan, "netns")


def test_live_by_open_fd_only():
    """A namespace that no process is in but one holds open (e.g. a runtime) counts as live."""
    facts = lab_facts(live={4026532496: [999]})
    plan = cni.plan_cleanup(facts)
    assert "/run/netns/" + LAB_STALE not in plan["remove"]["netns"]


def test_incomplete_proc_scan_keeps_valid_namespaces_but_removes_broken():
    plan = cni.plan_cleanup(lab_facts(live={}, live_complete=False, unreadable=[1]))
    assert plan["remove"]["netns"] == ["/run/netns/" + LAB_BROKEN]
    reasons = dict((k["name"], k["reason"]) for k in plan["kept"])
    assert reasons["/run/netns/" + LAB_STALE] == ("the /proc scan was incomplete (permission denied for pid 1); "
                                                  "cannot prove it unused")


def test_young_namespaces_are_kept():
    facts = lab_facts(netns=[ns(LAB_STALE, inode=4026532496, age=5), ns(LAB_BROKEN, inode=1, nsfs=False, age=5)])
    plan = cni.plan_cleanup(facts, min_age=60)
    assert plan["remove"]["netns"] == []
    assert all("old" in k["reason"] for k in plan["kept"] if k["kind"] == "netns")
    assert cni.plan_cleanup(facts, min_age=0)["remove"]["netns"] == ["/run/netns/" + LAB_STALE,
                                                                     "/run/netns/" + LAB_BROKEN]


@pytest.mark.parametrize("error", ["EIO: Input/output error", "EINVAL: Invalid argument"])
def test_unopenable_namespace_is_stale_whatever_its_age(error):
    facts = lab_facts(netns=[ns("cni-eio", error=error, inode=None, nsfs=None, age=None)])
    assert cni.plan_cleanup(facts, min_age=10 ** 9)["remove"]["netns"] == ["/run/netns/cni-eio"]


def test_unknown_sandboxes_keep_every_state_entry():
    plan = cni.plan_cleanup(lab_facts(sandboxes=None, sandboxes_error="crictl pods rc 1: connection refused"))
    assert plan["remove"]["paths"] == []
    reasons = [k["reason"] for k in plan["kept"] if k["kind"] == "path"]
    assert "live sandboxes unknown (crictl pods rc 1: connection refused)" in reasons


def test_only_stale_false_removes_everything():
    plan = cni.plan_cleanup(lab_facts(), only_stale=False)
    assert len(plan["remove"]["netns"]) == 3
    assert len(plan["remove"]["paths"]) == 5
    assert plan["remove"]["links"] == ["cali1111aaaaaaa", "cali2222bbbbbbb", "vxlan.calico"]
    assert plan["kept"] == []


def test_interfaces_option_filters_links():
    plan = cni.plan_cleanup(lab_facts(), only_stale=False, interfaces=["vxlan.calico"])
    assert plan["remove"]["links"] == ["vxlan.calico"]
    assert cni.plan_cleanup(lab_facts(), interfaces=[])["remove"]["links"] == []


def test_nothing_stale_is_empty():
    facts = lab_facts(netns=[ns(LAB_LIVE, inode=4026532565)], state_entries=[], links=[])
    plan = cni.plan_cleanup(facts)
    assert cni.plan_is_empty(plan)
    assert not cni.plan_is_empty(cni.plan_cleanup(lab_facts()))


def test_argv_builders():
    sock = "unix:///run/containerd/containerd.sock"
    assert cni.crictl_pods_argv("crictl", sock) == ["crictl", "--runtime-endpoint", sock, "pods", "-o", "json"]
    assert cni.ip_netns_list_argv("ip") == ["ip", "netns", "list"]
    assert cni.ip_link_show_argv("ip") == ["ip", "-j", "link", "show"]
    assert cni.ip_link_delete_argv("ip", "cali1") == ["ip", "link", "delete", "cali1"]
    assert cni.umount_lazy_argv("umount", "/run/netns/cni-1") == ["umount", "-l", "/run/netns/cni-1"]
    assert cni.systemctl_restart_argv("systemctl", "kubelet") == ["systemctl", "restart", "kubelet"]


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
    found = cni.observe_netns([str(d), str(d) + "/", str(tmp_path / "missing")], time.time(), nsfs_dev=-1)
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

    monkeypatch.setattr(cni.os, "stat", fake_stat)
    found = cni.observe_netns([str(d)], time.time(), nsfs_dev=-1)
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
    live, unreadable = cni.observe_live_netns(str(proc), nsfs_dev=None)
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

    monkeypatch.setattr(cni.os, "stat", fake_stat)
    live, unreadable = cni.observe_live_netns(str(proc))
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
    entries = cni.observe_state_entries([str(tmp_path / "networks"), str(results), str(tmp_path / "missing")])
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
    assert cni.remove_netns_file(str(path), runner, "umount", {str(path)}) is None
    assert runner.calls == [["umount", "-l", str(path)]]
    assert not path.exists()
    path.write_text("")
    runner = FakeRunner()
    assert cni.remove_netns_file(str(path), runner, "umount", set()) is None
    assert runner.calls == [] and not path.exists()
    assert cni.remove_netns_file(str(path), runner, "umount", set()) is None  # already gone
    path.write_text("")
    failing = FakeRunner(rc=32)
    assert "umount -l failed (rc 32)" in cni.remove_netns_file(str(path), failing, "umount", {str(path)})
    assert path.exists()


def test_remove_state_path(tmp_path):
    f = tmp_path / "entry"
    f.write_text("x")
    assert cni.remove_state_path(str(f)) is None and not f.exists()
    assert cni.remove_state_path(str(f)) is None


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
        while time.time() < deadline and os.stat(str(d / "cni-live")).st_dev != cni.nsfs_device():
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
    nsfs_dev = cni.nsfs_device()
    found = dict((f["name"], f) for f in cni.observe_netns([d], time.time(), nsfs_dev))
    assert found["cni-live"]["nsfs"] is True and found["cni-stale"]["nsfs"] is True
    assert found["cni-broken"]["nsfs"] is False
    live, unreadable = cni.observe_live_netns(nsfs_dev=nsfs_dev)
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
