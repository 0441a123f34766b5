"""cni_cleanup module: main() with a patched AnsibleModule on temporary netns/state directories.

The temporary files stand in for namespace mounts: nsfs_device() is patched to the temporary file system's
device so they count as mounted namespaces, and the /proc scan is patched to say which inode a process uses.
`ip -j link show` answers with our lab capture (fixtures/ip-netns/lab-cni-live-stale-broken.link.json) and
`crictl pods -o json` with the real capture in fixtures/crictl.
"""

import json
import os
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import cni_cleanup
from module_harness import ExitJson, FailJson, load, patch_exits, patch_run_command  # noqa: E402  (sibling helper)

LIVE_ID = "e98c6d0d5c306402e1887c6b1a41d062b08122a18f665a2ac2d12b1408dc3c69"
DEAD_ID = "e0f6665744e6f48928559cbfb3662c9d21a009331801da410c8152b2d37cdd0e"
READ_ONLY = (("ip", "netns"), ("ip", "-j"), ("crictl", "--runtime-endpoint"))


def build(tmp_path):
    netns = tmp_path / "run" / "netns"
    netns.mkdir(parents=True)
    old = time.time() - 3600
    for name in ("cni-live", "cni-stale", "cni-young", "not-cni"):
        (netns / name).write_text("")
        if name != "cni-young":
            os.utime(str(netns / name), (old, old))
    results = tmp_path / "var" / "lib" / "cni" / "results"
    results.mkdir(parents=True)
    (results / ("k8s-pod-network-%s-eth0" % LIVE_ID)).write_text("{}")
    (results / ("k8s-pod-network-%s-eth0" % DEAD_ID)).write_text("{}")
    networks = tmp_path / "var" / "lib" / "cni" / "networks" / "k8s-pod-network"
    networks.mkdir(parents=True)
    (networks / "lock").write_text("")
    (networks / "10.244.1.7").write_text("%s\r\neth0" % DEAD_ID)
    return {"netns_dir": [str(netns)],
            "state_dirs": [str(tmp_path / "var" / "lib" / "cni" / "networks"), str(results)]}


def responder(crictl_rc=0, link_delete_rc=0):
    def respond(argv):
        name = os.path.basename(argv[0])
        if name == "ip" and argv[1:3] == ["netns", "list"]:
            return 0, "cni-live (id: 0)\ncni-stale (id: 1)\ncni-young\n", ""
        if name == "ip" and argv[1:3] == ["-j", "link"]:
            return 0, load("ip-netns", "lab-cni-live-stale-broken.link.json"), ""
        if name == "ip" and argv[1:3] == ["link", "delete"]:
            return link_delete_rc, "", "" if link_delete_rc == 0 else "Cannot find device \"%s\"" % argv[3]
        if name == "crictl":
            if crictl_rc:
                return crictl_rc, "", "connect: connection refused"
            return 0, load("crictl", "pods-json-ready-and-notready.txt"), ""
        return 0, "", ""

    return respond


def run(args, monkeypatch, tmp_path, respond=None, check_mode=False, diff=False, live_name="cni-live"):
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    respond = respond or responder()
    warnings = []
    patch_exits(monkeypatch, warnings)
    calls = patch_run_command(monkeypatch, respond)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    netns_dir = args["netns_dir"][0]
    monkeypatch.setattr(cni_cleanup.cni_io, "nsfs_device", lambda *a: os.stat(netns_dir).st_dev)
    live_inode = os.stat(os.path.join(netns_dir, live_name)).st_ino if os.path.exists(
        os.path.join(netns_dir, live_name)) else -1
    monkeypatch.setattr(cni_cleanup.cni_io, "observe_live_netns", lambda **kw: ({live_inode: [4242]}, []))
    monkeypatch.setattr(cni_cleanup.cni_io, "read_mountpoints", lambda *a: [])
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            cni_cleanup.main()
    return caught.value.args[0], calls, warnings


def short(calls):
    return [[os.path.basename(c[0])] + c[1:] for c in calls]


def mutating(calls):
    return [c for c in short(calls) if (c[0], c[1]) not in READ_ONLY]


def test_check_mode_reports_exactly_what_would_go(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    removed_calls = []
    for name in ("unlink", "remove", "rmdir"):
        monkeypatch.setattr(cni_cleanup.cni_io.os, name, lambda *a, **k: removed_calls.append(a))
    result, calls, w = run(dirs, monkeypatch, tmp_path, check_mode=True)
    netns = dirs["netns_dir"][0]
    results = dirs["state_dirs"][1]
    networks = os.path.join(dirs["state_dirs"][0], "k8s-pod-network")
    assert result["changed"] is True
    assert result["removed"] == {
        "netns": [os.path.join(netns, "cni-stale")],
        "paths": [os.path.join(networks, "10.244.1.7"), os.path.join(results, "k8s-pod-network-%s-eth0" % DEAD_ID)],
        "links": ["cali2222bbbbbbb"],
    }
    assert result["restarted"] == ["containerd", "kubelet"]
    kept = dict((k["name"], k["reason"]) for k in result["kept"])
    assert kept[os.path.join(netns, "cni-live")] == "in use by running process(es) 4242"
    assert "a sandbox may be starting" in kept[os.path.join(netns, "cni-young")]
    assert kept[os.path.join(networks, "lock")] == "IPAM bookkeeping file"
    assert os.path.join(netns, "not-cni") not in kept
    assert mutating(calls) == [] and removed_calls == []
    assert os.path.exists(os.path.join(netns, "cni-stale"))
    assert ["crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock", "pods", "-o", "json"] in short(calls)


def test_removes_stale_and_restarts_in_order(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, calls, warnings = run(dirs, monkeypatch, tmp_path)
    netns = dirs["netns_dir"][0]
    assert result["changed"] is True
    assert result["removed"]["netns"] == [os.path.join(netns, "cni-stale")]
    assert not os.path.exists(os.path.join(netns, "cni-stale"))
    assert os.path.exists(os.path.join(netns, "cni-live")) and os.path.exists(os.path.join(netns, "cni-young"))
    assert not os.path.exists(os.path.join(dirs["state_dirs"][1], "k8s-pod-network-%s-eth0" % DEAD_ID))
    assert os.path.exists(os.path.join(dirs["state_dirs"][1], "k8s-pod-network-%s-eth0" % LIVE_ID))
    assert mutating(calls) == [["ip", "link", "delete", "cali2222bbbbbbb"], ["systemctl", "restart", "containerd"],
                               ["systemctl", "restart", "kubelet"]]
    assert result["restarted"] == ["containerd", "kubelet"]
    assert warnings == []


def test_second_run_changes_nothing(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    run(dirs, monkeypatch, tmp_path)

    def after_first(argv):  # cali2222's namespace is gone, so is the veth
        if argv[1:3] == ["-j", "link"]:
            links = [lk for lk in json.loads(load("ip-netns", "lab-cni-live-stale-broken.link.json"))
                     if lk["ifname"] != "cali2222bbbbbbb"]
            return 0, json.dumps(links), ""
        return responder()(argv)

    result, calls, w = run(dirs, monkeypatch, tmp_path, respond=after_first)
    assert result["changed"] is False and result["restarted"] == []
    assert mutating(calls) == []


def test_never_removes_the_namespace_a_running_sandbox_uses(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, calls, w = run(dict(dirs, min_age=0), monkeypatch, tmp_path)
    live = os.path.join(dirs["netns_dir"][0], "cni-live")
    assert live not in result["removed"]["netns"] and os.path.exists(live)
    assert "cali1111aaaaaaa" not in result["removed"]["links"]
    assert ["ip", "link", "delete", "cali1111aaaaaaa"] not in short(calls)


def test_crictl_failure_keeps_state_entries(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, calls, w = run(dirs, monkeypatch, tmp_path, respond=responder(crictl_rc=1), check_mode=True)
    assert result["removed"]["paths"] == []
    reasons = [k["reason"] for k in result["kept"] if k["kind"] == "path"]
    assert "live sandboxes unknown (crictl pods rc 1: connect: connection refused)" in reasons
    assert result["removed"]["netns"]  # namespaces are judged without crictl


def test_only_stale_false_cleans_everything(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, calls, w = run(dict(dirs, only_stale=False, restart_services=[]), monkeypatch, tmp_path)
    netns = dirs["netns_dir"][0]
    assert sorted(os.listdir(netns)) == ["not-cni"]
    assert len(result["removed"]["paths"]) == 4
    assert result["removed"]["links"] == ["cali1111aaaaaaa", "cali2222bbbbbbb", "vxlan.calico"]
    assert result["restarted"] == [] and result["kept"] == []
    assert not any(c[:2] == ["systemctl", "restart"] for c in short(calls))


def test_nothing_stale(tmp_path, monkeypatch):
    netns = tmp_path / "netns"
    netns.mkdir()
    (netns / "cni-live").write_text("")
    result, calls, w = run({"netns_dir": [str(netns)], "state_dirs": [str(tmp_path / "none")]}, monkeypatch,
                           tmp_path, respond=lambda argv: (0, "[]", "") if argv[1:2] == ["-j"] else
                           responder()(argv))
    assert result["changed"] is False and result["restarted"] == []
    assert result["removed"] == {"netns": [], "paths": [], "links": []}
    assert mutating(calls) == []


def test_diff_mode(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, c, w = run(dirs, monkeypatch, tmp_path, check_mode=True, diff=True)
    before, after = result["diff"]["before"], result["diff"]["after"]
    stale = os.path.join(dirs["netns_dir"][0], "cni-stale")
    assert stale in before["netns"] and stale not in after["netns"]
    assert "cali2222bbbbbbb" in before["links"] and "cali2222bbbbbbb" not in after["links"]
    assert "vxlan.calico" in after["links"]
    assert len(before["paths"]) - len(after["paths"]) == 2


def test_link_delete_failure_is_a_warning(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    result, c, warnings = run(dirs, monkeypatch, tmp_path, respond=responder(link_delete_rc=1))
    assert result["removed"]["links"] == []
    assert warnings == ['ip link delete cali2222bbbbbbb failed (rc 1): Cannot find device "cali2222bbbbbbb"']
    assert result["changed"] is True  # the namespace and entries still went


def test_netns_removal_failure_fails_with_details(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    monkeypatch.setattr(cni_cleanup.cni_io, "remove_netns_file", lambda *a: "EBUSY: Device or resource busy")
    result, calls, w = run(dirs, monkeypatch, tmp_path)
    assert result["failed"] is True
    assert result["msg"].startswith("could not remove all stale CNI state: ")
    assert "cni-stale: EBUSY" in result["msg"]
    assert not any(c[:2] == ["systemctl", "restart"] for c in short(calls))


def test_a_restart_that_hangs_in_its_stop_is_ended_by_sigkill_then_a_start(tmp_path, monkeypatch):
    # The kubelet of fault 6: its stop signal ignored, systemd waiting; `timeout` ends systemctl with rc 124.
    dirs = build(tmp_path)
    plain = responder()

    def respond(argv):
        if argv[1:] == ["restart", "kubelet"]:
            return 124, "", ""
        return plain(argv)

    result, calls, unused = run(dirs, monkeypatch, tmp_path, respond=respond)
    assert mutating(calls)[-4:] == [["systemctl", "restart", "containerd"], ["systemctl", "restart", "kubelet"],
                                    ["systemctl", "kill", "--signal=SIGKILL", "kubelet"], ["systemctl", "start", "kubelet"]]
    assert result["restarted"] == ["containerd", "kubelet"] and not result.get("failed")


def test_a_unit_that_does_not_start_after_the_kill_fails_naming_it(tmp_path, monkeypatch):
    dirs = build(tmp_path)
    plain = responder()

    def respond(argv):
        if argv[1:] in (["restart", "kubelet"], ["start", "kubelet"]):
            return 124, "", ""
        return plain(argv)

    result, unused_calls, unused = run(dirs, monkeypatch, tmp_path, respond=respond)
    assert result["failed"] and result["msg"] == "restarting kubelet after the CNI cleanup failed (timed out)"
    assert result["cmd"].endswith("systemctl start kubelet")
