"""roce_check module: main() with a patched AnsibleModule (argv, check mode, messages).

The fake sysfs tree mirrors a DGX Spark with the cable in port 1 (f1 twins up at MTU 9000), as in the
real ibv_devinfo capture spark-unknownrepo-f1-up-f0-down-mtu9000.txt that the fake ibv_devinfo
prints.  The GID tables and addresses (10.10.10.1, 10.10.11.1 at index 3) are constructed in the
layout show_gids prints on a GB10.
"""

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import roce_check
from module_harness import ExitJson, FailJson, load  # noqa: E402  (sibling helper)

BINARIES = {"timeout": "/usr/bin/timeout", "ip": "/usr/sbin/ip", "ibv_devinfo": "/usr/bin/ibv_devinfo",
            "rdma": "/usr/sbin/rdma", "ib_write_bw": "/usr/bin/ib_write_bw"}
ZERO = "0000:0000:0000:0000:0000:0000:0000:0000"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text + "\n")


def spark_tree(root, mtu=9000):
    """f1 twins up and addressed, f0 twins down (no IPv4 GIDs)."""
    layout = {
        "rocep1s0f0": ("enp1s0f0np0", "1: DOWN", "3: Disabled", "40 Gb/sec (4X QDR)", None, "0a0a"),
        "roceP2p1s0f0": ("enP2p1s0f0np0", "1: DOWN", "3: Disabled", "40 Gb/sec (4X QDR)", None, "0a0b"),
        "rocep1s0f1": ("enp1s0f1np1", "4: ACTIVE", "5: LinkUp", "200 Gb/sec (4X HDR)", "0a0a:0a01", "0a0a"),
        "roceP2p1s0f1": ("enP2p1s0f1np1", "4: ACTIVE", "5: LinkUp", "200 Gb/sec (4X HDR)", "0a0a:0b01", "0a0b"),
    }
    for dev, (netdev, state, phys, rate, v4, tag) in layout.items():
        pdir = os.path.join(str(root), "class", "infiniband", dev, "ports", "1")
        for name, value in (("state", state), ("phys_state", phys), ("rate", rate), ("link_layer", "Ethernet")):
            write(os.path.join(pdir, name), value)
        rows = [(0, "fe80:0000:0000:0000:4ebb:47ff:fe2d:%s" % tag, "IB/RoCE v1"),
                (1, "fe80:0000:0000:0000:4ebb:47ff:fe2d:%s" % tag, "RoCE v2")]
        if v4:
            rows += [(2, "0000:0000:0000:0000:0000:ffff:%s" % v4, "IB/RoCE v1"),
                     (3, "0000:0000:0000:0000:0000:ffff:%s" % v4, "RoCE v2")]
        for index in range(6):
            row = [r for r in rows if r[0] == index]
            write(os.path.join(pdir, "gids", str(index)), row[0][1] if row else ZERO)
            if row:
                write(os.path.join(pdir, "gid_attrs", "types", str(index)), row[0][2])
                write(os.path.join(pdir, "gid_attrs", "ndevs", str(index)), netdev)
        ndir = os.path.join(str(root), "class", "net", netdev)
        write(os.path.join(ndir, "mtu"), str(mtu if v4 else 1500))
        write(os.path.join(ndir, "speed"), "200000" if v4 else "-1")


IP_JSON = json.dumps([
    {"ifindex": 1, "ifname": "lo", "mtu": 65536, "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifindex": 2, "ifname": "enP7s7", "mtu": 1500, "addr_info": [{"family": "inet", "local": "192.168.86.38", "prefixlen": 24}]},
    {"ifindex": 3, "ifname": "enp1s0f0np0", "mtu": 1500, "addr_info": []},
    {"ifindex": 4, "ifname": "enp1s0f1np1", "mtu": 9000, "addr_info": [{"family": "inet", "local": "10.10.10.1", "prefixlen": 24}]},
    {"ifindex": 5, "ifname": "enP2p1s0f0np0", "mtu": 1500, "addr_info": []},
    {"ifindex": 6, "ifname": "enP2p1s0f1np1", "mtu": 9000, "addr_info": [{"family": "inet", "local": "10.10.11.1", "prefixlen": 24}]},
])

SUBNETS = ["10.10.10.0/24", "10.10.11.0/24"]


class Target(object):
    """Patched AnsibleModule surroundings: binaries present, command answers, recorded calls."""

    def __init__(self, monkeypatch, missing=(), answers=None):
        self.calls = []
        self.warnings = []
        self.missing = set(missing)
        self.answers = answers or {}
        self.bw_outputs = []
        target = self

        def get_bin_path(module, name, required=False, opt_dirs=None):
            return None if name in target.missing else BINARIES[name]

        def run_command(module, args, **kwargs):
            target.calls.append(list(args))
            argv = args[3:] if args[0] == BINARIES["timeout"] else args
            if argv[0] == BINARIES["ib_write_bw"]:
                return target.bw_outputs.pop(0)
            return target.answers.get(tuple(argv), (0, "", ""))

        def exit_json(module, **kwargs):
            raise ExitJson(kwargs)

        def fail_json(module, **kwargs):
            raise FailJson(kwargs)

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
        monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
        monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, msg: target.warnings.append(msg))
        monkeypatch.setattr(roce_check.time, "sleep", lambda seconds: None)
        self.answers.setdefault(("/usr/sbin/ip", "-j", "addr", "show"), (0, IP_JSON, ""))
        self.answers.setdefault(("/usr/bin/ibv_devinfo",),
                                (0, load("ibv_devinfo", "spark-unknownrepo-f1-up-f0-down-mtu9000.txt"), ""))
        self.answers.setdefault(("/usr/sbin/rdma", "link", "show"), (0, load("rdma-link", "gb10-sean-f0-active-f1-disabled.txt"), ""))

    def run(self, args, expect=ExitJson):
        with patch_module_args(args):
            with pytest.raises((ExitJson, FailJson)) as info:
                roce_check.main()
        assert isinstance(info.value, expect), info.value.args[0]
        return info.value.args[0]

    def argv_run(self):
        return [c[3:] for c in self.calls if c[0] == BINARIES["timeout"]]


def test_healthy_run_argv_and_results(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS})
    assert target.calls == [
        ["/usr/bin/timeout", "--kill-after=5", "30", "/usr/sbin/ip", "-j", "addr", "show"],
        ["/usr/bin/timeout", "--kill-after=5", "30", "/usr/bin/ibv_devinfo"],
        ["/usr/bin/timeout", "--kill-after=5", "30", "/usr/sbin/rdma", "link", "show"],
    ]
    assert result["changed"] is False
    assert result["failures"] == []
    assert [(d["name"], d["netdev"], d["ipv4"], d["gid_index"], d["active_mtu"], d["speed_mbps"]) for d in result["devices"]] == [
        ("roceP2p1s0f1", "enP2p1s0f1np1", "10.10.11.1", 3, 4096, 200000),
        ("rocep1s0f1", "enp1s0f1np1", "10.10.10.1", 3, 4096, 200000)]
    assert result["nccl_env"] == {"NCCL_IB_HCA": "=roceP2p1s0f1,rocep1s0f1", "NCCL_IB_GID_INDEX": "3",
                                  "NCCL_SOCKET_IFNAME": "=enP2p1s0f1np1,enp1s0f1np1"}
    assert result["bandwidth"]["skipped"] is True and result["bandwidth"]["msg"] == "bandwidth_test is false"
    assert target.warnings == []


def test_failures_give_one_message_listing_all(tmp_path, monkeypatch):
    spark_tree(tmp_path, mtu=1500)
    target = Target(monkeypatch, answers={("/usr/bin/ibv_devinfo",): (
        0, load("ibv_devinfo", "spark-elizabetht-4dev-fw28.45.4028.txt"), "")})
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "devices": ["rocep1s0f1", "rocep1s0f0"]},
                        expect=FailJson)
    assert result["msg"] == (
        "RoCE check failed (2 of 2 checked device(s) unhealthy): "
        "rocep1s0f1 port 1 (enp1s0f1np1): netdev MTU 1500 below min_mtu 9000; active RDMA MTU 1024 below "
        "min_active_mtu 4096 (RoCE uses the largest IB MTU that fits the netdev MTU: 4096 needs a netdev MTU of at "
        "least 4200) | "
        "rocep1s0f0 port 1 (enp1s0f0np0): port state DOWN, expected ACTIVE; physical state Disabled, expected LinkUp; "
        "link speed 40000 Mb/s below min_speed_mbps 200000; netdev MTU 1500 below min_mtu 9000; active RDMA MTU 1024 "
        "below min_active_mtu 4096 (RoCE uses the largest IB MTU that fits the netdev MTU: 4096 needs a netdev MTU of "
        "at least 4200); netdev enp1s0f0np0 has no IPv4 address in 10.10.10.0/24, 10.10.11.0/24")
    assert len(result["failures"]) == 8
    assert result["changed"] is False and result["nccl_env"] == {}
    assert [d["name"] for d in result["devices"]] == ["rocep1s0f1", "rocep1s0f0"]


def test_fail_on_error_false_warns(tmp_path, monkeypatch):
    spark_tree(tmp_path, mtu=1500)
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "fail_on_error": False})
    assert result["changed"] is False
    assert len(result["failures"]) == 2
    assert target.warnings == [roce_check.roce.failure_message(result["failures"], result["devices"])]


def test_check_mode_runs_checks_but_no_bandwidth_test(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "bandwidth_test": True,
                         "bandwidth_role": "client", "peer": "10.10.10.2", "_ansible_check_mode": True})
    assert not any("ib_write_bw" in " ".join(c) for c in target.calls)
    assert len(target.calls) == 3
    assert result["bandwidth"]["skipped"] is True
    assert result["bandwidth"]["msg"] == "bandwidth test skipped in check mode"
    assert result["failures"] == [] and result["changed"] is False


def test_bandwidth_client(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    target.bw_outputs = [
        (0, load("ib_write_bw", "spark-nvidia-guide-roceP2p1s0f0-run-infinitely.txt"), ""),
        (1, "", " Couldn't connect to 10.10.10.2:18516\nUnable to open file descriptor for socket connection"),
        (0, load("ib_write_bw", "spark-nvidia-guide-rocep1s0f0-run-infinitely.txt"), ""),
    ]
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "bandwidth_test": True,
                         "bandwidth_role": "client", "peer": "10.10.10.2", "bandwidth_duration": 10})
    bw_calls = [c for c in target.calls if "/usr/bin/ib_write_bw" in c]
    assert bw_calls[0] == ["/usr/bin/timeout", "--kill-after=5", "60", "/usr/bin/ib_write_bw", "-d", "roceP2p1s0f1",
                           "-i", "1", "-x", "3", "-p", "18515", "-F", "--report_gbits", "-D", "10", "10.10.10.2"]
    assert bw_calls[1][3:] == bw_calls[2][3:] == ["/usr/bin/ib_write_bw", "-d", "rocep1s0f1", "-i", "1", "-x", "3",
                                                  "-p", "18516", "-F", "--report_gbits", "-D", "10", "10.10.10.2"]
    bandwidth = result["bandwidth"]
    assert (bandwidth["ran"], bandwidth["ok"], bandwidth["total_gbps"], bandwidth["mode"]) == (True, True, 189.85, "sequential")
    assert [(d["name"], d["avg_gbps"], d["attempts"]) for d in bandwidth["devices"]] == [
        ("roceP2p1s0f1", 97.28, 1), ("rocep1s0f1", 92.57, 2)]
    assert result["devices"][1]["checks"]["bandwidth"] == {"ok": True, "value": 92.57, "expected": ">= 90.0 Gb/s"}


def test_bandwidth_client_below_threshold_fails(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    target.bw_outputs = [
        (0, load("ib_write_bw", "spark-nvidia-guide-roceP2p1s0f0-run-infinitely.txt"), ""),
        (0, load("ib_write_bw", "spark-nvidia-guide-rocep1s0f0-run-infinitely.txt"), ""),
    ]
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "bandwidth_test": True,
                         "bandwidth_role": "client", "peer": "10.10.10.2", "min_bandwidth_gbps": 95}, expect=FailJson)
    assert result["msg"] == ("RoCE check failed (1 of 2 checked device(s) unhealthy): rocep1s0f1 port 1 (enp1s0f1np1): "
                             "bandwidth test RDMA write bandwidth 92.57 Gb/s below min_bandwidth_gbps 95.0")
    assert result["nccl_env"]["NCCL_IB_HCA"] == "=roceP2p1s0f1"


def test_bandwidth_server_argv(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    target.bw_outputs = [(0, "", ""), (0, "", "")]
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "bandwidth_test": True,
                         "bandwidth_role": "server", "bandwidth_timeout": 90})
    assert [c for c in target.calls if "/usr/bin/ib_write_bw" in c] == [
        ["/usr/bin/timeout", "--kill-after=5", "90", "/usr/bin/ib_write_bw", "-d", "roceP2p1s0f1", "-i", "1", "-x", "3",
         "-p", "18515", "-F", "--report_gbits", "-D", "5"],
        ["/usr/bin/timeout", "--kill-after=5", "90", "/usr/bin/ib_write_bw", "-d", "rocep1s0f1", "-i", "1", "-x", "3",
         "-p", "18516", "-F", "--report_gbits", "-D", "5"]]
    assert result["bandwidth"]["ok"] is True


def test_missing_ib_write_bw(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch, missing=["ib_write_bw"])
    result = target.run({"sysfs_root": str(tmp_path), "bandwidth_test": True, "bandwidth_role": "server"}, expect=FailJson)
    assert "bandwidth test: ib_write_bw not found on the target (install perftest)" in result["msg"]


def test_missing_ibv_devinfo_and_rdma(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch, missing=["ibv_devinfo", "rdma"])
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS}, expect=FailJson)
    assert result["failures"] == [
        "roceP2p1s0f1 port 1 (enP2p1s0f1np1): active RDMA MTU unknown: ibv_devinfo not found on the target (install ibverbs-utils)",
        "rocep1s0f1 port 1 (enp1s0f1np1): active RDMA MTU unknown: ibv_devinfo not found on the target (install ibverbs-utils)"]
    assert target.argv_run() == [["/usr/sbin/ip", "-j", "addr", "show"]]
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS, "min_active_mtu": 0})
    assert result["failures"] == []


def test_ibv_devinfo_error(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch, answers={("/usr/bin/ibv_devinfo",): (255, "", "Failed to get IB devices list: Function not implemented")})
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": SUBNETS}, expect=FailJson)
    assert result["failures"][0].endswith(
        "active RDMA MTU unknown: ibv_devinfo failed (rc 255): Failed to get IB devices list: Function not implemented")


def test_missing_ip_is_a_precise_message(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch, missing=["ip"])
    result = target.run({"sysfs_root": str(tmp_path)}, expect=FailJson)
    assert result["msg"] == "'ip' (iproute2) not found on the target: it is needed to read the netdevs' IPv4 addresses"
    assert target.calls == []


def test_no_rdma_devices(tmp_path, monkeypatch):
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path)}, expect=FailJson)
    assert result["msg"].startswith("no RDMA devices: %s/class/infiniband is missing or empty" % tmp_path)
    assert result["changed"] is False


def test_bad_subnet(tmp_path, monkeypatch):
    spark_tree(tmp_path)
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path), "fabric_subnets": ["10.10.10.0/24", "fabric"]}, expect=FailJson)
    assert result["msg"].startswith("fabric_subnets: 'fabric' is not an IPv4 network")


def test_client_needs_peer(tmp_path, monkeypatch):
    target = Target(monkeypatch)
    result = target.run({"sysfs_root": str(tmp_path), "bandwidth_test": True, "bandwidth_role": "client"}, expect=FailJson)
    assert "peer" in result["msg"]
    result = target.run({"sysfs_root": str(tmp_path), "bandwidth_test": True}, expect=FailJson)
    assert "bandwidth_role" in result["msg"]
