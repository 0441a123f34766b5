"""cni core (pure): parsers on real captures (ip netns from k3s/rke2 issues and our own lab capture, crictl pods
-o json, ip -j link show), and the planner, the result and the diff on plain data.  The I/O layer (cni_io) has its
own tests in test_cni_io.py.
"""

import os

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
# command results, the module's result and diff (plain data)
# ---------------------------------------------------------------------------------------------

def test_netns_ids_from_ip_netns_list():
    text = load("ip-netns", "lab-cni-live-stale-broken.ip-netns.txt")
    ids = cni.netns_ids(0, text)
    assert ids == dict((n["name"], n["id"]) for n in cni.parse_ip_netns(text)["netns"]) and ids
    assert cni.netns_ids(1, text) == {}


def test_links_from_ip_link_show():
    text = load("ip-netns", "lab-cni-live-stale-broken.link.json")
    assert cni.links(0, text) == cni.parse_ip_link_json(text)
    assert cni.links(1, text) == []
    assert cni.links(0, "not json") == []


def test_sandboxes_from_crictl_pods():
    ids, error = cni.sandboxes(0, load("crictl", "pods-json-ready-and-notready.txt"), "")
    assert LIVE_ID in ids and NOTREADY_ID in ids and error is None
    assert cni.sandboxes(1, "", "connect: connection refused\n") == (
        None, "crictl pods rc 1: connect: connection refused")
    assert cni.sandboxes(124, "", "") == (None, "crictl pods rc 124: ")
    assert cni.sandboxes(0, "[1, 2]", "") == (None, "crictl pods printed no JSON")
    assert cni.sandboxes(0, "garbage", "") == (None, "crictl pods printed no JSON")


def test_planned_result_and_diff():
    facts = lab_facts()
    plan = cni.plan_cleanup(facts)
    result = cni.planned_result(plan, ["containerd", "kubelet"])
    assert result == {"changed": True, "removed": plan["remove"], "kept": plan["kept"],
                      "restarted": ["containerd", "kubelet"]}
    diff = cni.plan_diff(facts, plan)
    assert diff["before"]["netns"] == sorted("/run/netns/" + n for n in (LAB_BROKEN, LAB_STALE, LAB_LIVE))
    assert diff["after"]["netns"] == ["/run/netns/" + LAB_LIVE]
    assert diff["before"]["links"] == sorted(kept_names(plan, "link")) + ["cali2222bbbbbbb"]
    assert "cali2222bbbbbbb" not in diff["after"]["links"]
    assert diff["after"]["paths"] == [e["path"] for e in sorted(facts["state_entries"], key=lambda e: e["path"])
                                      if e["path"] not in plan["remove"]["paths"]]


def test_planned_result_nothing_to_do_restarts_nothing():
    plan = cni.plan_cleanup({"netns": [], "live": {}})
    assert cni.planned_result(plan, ["containerd"]) == {
        "changed": False, "removed": {"netns": [], "paths": [], "links": []}, "kept": [], "restarted": []}


def test_removal_failure():
    assert cni.removal_failure([]) is None
    assert cni.removal_failure(["/run/netns/cni-x: EBUSY", "/var/lib/cni/y: EACCES"]) == (
        "could not remove all stale CNI state: /run/netns/cni-x: EBUSY; /var/lib/cni/y: EACCES")
