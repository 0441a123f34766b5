"""The lab's power listener (lab/power_listener.py, LAB ONLY): its magic-packet recogniser as a pure function, and
the listener itself on 127.0.0.1 with stand-in pause/unpause commands that only record what they were asked (no
podman, no lab): a suspend request pauses the node, a magic packet for its MAC unpauses it, every recognised packet
is logged."""

import importlib.util
import os
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCRIPT = os.path.join(REPO, "lab", "power_listener.py")
_SPEC = importlib.util.spec_from_file_location("power_listener", SCRIPT)
listener = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(listener)

WORKER_MAC = "4c:bb:47:2c:ba:63"


def magic(mac, copies=16):
    """A magic packet: 6 x 0xff, then the MAC 16 times (community.general.wakeonlan sends it 20 times)."""
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * copies


def test_recognises_a_magic_packet_and_its_mac():
    assert listener.magic_packet_mac(magic(WORKER_MAC)) == WORKER_MAC
    assert listener.magic_packet_mac(magic(WORKER_MAC, copies=20)) == WORKER_MAC  # as community.general.wakeonlan
    # Anywhere in the payload, with a SecureOn password after it.
    assert listener.magic_packet_mac(b"\x00\x01" + magic(WORKER_MAC) + b"secret") == WORKER_MAC


@pytest.mark.parametrize("payload", [
    b"",
    b"\xff" * 6,
    magic(WORKER_MAC)[:-1],  # one byte short
    b"\xff" * 6 + bytes.fromhex("4cbb472cba63") * 15 + bytes.fromhex("4cbb472e2959"),  # one copy differs
    b"hello world" * 20,
])
def test_anything_else_is_not_a_magic_packet(payload):
    assert listener.magic_packet_mac(payload) is None


def test_a_longer_sync_run_still_finds_the_mac():
    assert listener.magic_packet_mac(b"\xff" * 9 + bytes.fromhex("4cbb472cba63") * 16) == WORKER_MAC


def test_parse_nodes_normalises_macs():
    assert listener.parse_nodes(["spark-ba63=4C-BB-47-2C-BA-63"]) == {WORKER_MAC: "spark-ba63"}
    with pytest.raises(ValueError):
        listener.parse_nodes(["spark-ba63"])
    with pytest.raises(ValueError):
        listener.normalise_mac("4c:bb:47:2c:ba")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(path, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as handle:
                content = handle.read()
            if text in content:
                return content
        time.sleep(0.05)
    raise AssertionError("%r not in %s within %ss:\n%s" % (text, path, timeout,
                                                           open(path).read() if os.path.exists(path) else ""))


def test_listener_pauses_on_request_and_unpauses_on_the_right_magic_packet(tmp_path):
    state = tmp_path / "lab"
    (state / "power" / "spark-ba63").mkdir(parents=True)
    (state / "power" / "spark-2959").mkdir(parents=True)
    record = tmp_path / "commands"
    fake = tmp_path / "fake-podman"
    fake.write_text("#!/bin/sh\necho \"$*\" >> %s\n" % record)
    fake.chmod(0o755)
    port = free_udp_port()
    log = state / "power.log"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--state-dir", str(state), "--address", "127.0.0.1",
                             "--port", str(port), "--node", "spark-2959=4c:bb:47:2e:29:59",
                             "--node", "spark-ba63=%s" % WORKER_MAC, "--pause-command", "%s pause" % fake,
                             "--unpause-command", "%s unpause" % fake, "--poll", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_line(str(log), "listening on UDP %d" % port)
        (state / "power" / "spark-ba63" / "suspend-request").write_text("LAB suspend of spark-ba63\n")
        wait_for_line(str(log), "spark-ba63 paused (asleep)")
        assert not (state / "power" / "spark-ba63" / "suspend-request").exists()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"not a magic packet", ("127.0.0.1", port))
            sock.sendto(magic("4c:bb:47:2e:29:59"), ("127.0.0.1", port))  # the control plane: awake, left alone
            sock.sendto(magic(WORKER_MAC), ("127.0.0.1", port))
        content = wait_for_line(str(log), "spark-ba63 unpaused (awake)")
        assert "magic packet for 4c:bb:47:2e:29:59 (spark-2959)" in content
        assert "spark-2959 is not asleep" in content
        assert "magic packet for %s (spark-ba63) from 127.0.0.1:" % WORKER_MAC in content
        assert "not a magic" not in content
        assert record.read_text().splitlines() == ["pause spark-ba63", "unpause spark-ba63"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0, proc.stdout.read()
    assert log.read_text().rstrip().endswith("stopped")
