"""Final state after the fabric scenario (converge, restart, cable moved to port 0), read through podman exec."""

import json

import pytest

testinfra_hosts = ["podman://spark-2959", "podman://spark-ba63"]

ADDRESSES = {
    "spark-2959": ("10.10.10.1", "10.10.11.1"),
    "spark-ba63": ("10.10.10.2", "10.10.11.2"),
}


def links(host):
    return {entry["ifname"]: entry for entry in json.loads(host.check_output("ip -j addr show"))}


def ipv4(entry):
    return [a["local"] for a in entry.get("addr_info", []) if a["family"] == "inet"]


def test_port0_halves_carry_the_addresses_at_mtu_9000(host):
    name = host.check_output("hostname")
    by_name = links(host)
    first, second = ADDRESSES[name]
    assert ipv4(by_name["enp1s0f0np0"]) == [first]
    assert ipv4(by_name["enP2p1s0f0np0"]) == [second]
    assert by_name["enp1s0f0np0"]["mtu"] == 9000
    assert by_name["enP2p1s0f0np0"]["mtu"] == 9000


def test_addresses_left_the_uncabled_port1(host):
    by_name = links(host)
    assert ipv4(by_name["enp1s0f1np1"]) == []
    assert ipv4(by_name["enP2p1s0f1np1"]) == []


def test_management_interface_untouched(host):
    name = host.check_output("hostname")
    lan = {"spark-2959": "192.168.86.38", "spark-ba63": "192.168.86.39"}[name]
    assert ipv4(links(host)["enP7s7"]) == [lan]


def test_persisted_file_is_private_and_names_port0(host):
    persisted = host.file("/etc/netplan/40-dgx-spark-fabric.yaml")
    assert persisted.exists
    assert persisted.mode == 0o600
    assert persisted.user == "root"
    assert "enp1s0f0np0" in persisted.content_string
    assert "enp1s0f1np1" not in persisted.content_string


@pytest.mark.parametrize("half", [0, 1])
def test_jumbo_frame_reaches_the_peer(host, half):
    name = host.check_output("hostname")
    peer = [n for n in ADDRESSES if n != name][0]
    iface = ["enp1s0f0np0", "enP2p1s0f0np0"][half]
    cmd = host.run("ping -c 1 -W 2 -M do -s 8972 -I %s %s" % (iface, ADDRESSES[peer][half]))
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
