#!/usr/bin/env python
"""LAB ONLY: the lab's stand-in for a Spark's suspend and its NIC's Wake-on-LAN. Python 3 standard library only.

A lab node is a podman container sharing this machine's kernel, so it cannot suspend. The lab inventory's
power_suspend_command (a LAB command) writes ``suspend-request`` into the node's power directory, which lab/lab.sh
bind-mounts from .lab/power/<node> at /lab-power. This listener, started by ``lab/lab.sh up`` and stopped by
``lab/lab.sh down``, sees the request and runs ``podman pause <node>``. It listens on UDP 9 and 7 on the lab's LAN
bridge for magic packets (6 x 0xff, then the MAC 16 times); a packet for the MAC of a node it paused runs
``podman unpause <node>``: only a real magic packet that crossed the lab LAN wakes a "sleeping" node. It logs
every packet it recognises, and every pause and unpause, to the log file (.lab/power.log).

    power_listener.py --state-dir .lab --node spark-2959=4c:bb:47:2e:29:59 --node spark-ba63=4c:bb:47:2c:ba:63 \\
        [--interface BRIDGE] [--address 0.0.0.0] [--port 9 --port 7] [--log .lab/power.log]
"""

import argparse
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time

SYNC = b"\xff" * 6
REQUEST = "suspend-request"
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


def normalise_mac(text):
    """``4C-BB-47-2E-29-59`` or ``4cbb472e2959`` -> ``4c:bb:47:2e:29:59``; ValueError when it is not a MAC."""
    digits = "".join(ch for ch in text.lower() if ch not in ":-.")
    if len(digits) != 12 or any(ch not in "0123456789abcdef" for ch in digits):
        raise ValueError("not a MAC address: %r" % text)
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def magic_packet_mac(payload):
    """The MAC a Wake-on-LAN magic packet wakes (``aa:bb:cc:dd:ee:ff``), or None when ``payload`` is not one.

    A magic packet holds, anywhere in its payload, six 0xff bytes followed by the same six-byte MAC sixteen times
    (a SecureOn password may follow). The MAC itself may not be ff:ff:ff:ff:ff:ff or start the sync stream again, so
    the first sync stream that is followed by sixteen copies wins."""
    payload = bytes(payload or b"")
    start = payload.find(SYNC)
    while start != -1:
        body = payload[start + 6:start + 6 + 96]
        if len(body) == 96:
            mac = body[:6]
            if body == mac * 16 and mac != SYNC:
                return ":".join("%02x" % byte for byte in bytearray(mac))
        start = payload.find(SYNC, start + 1)
    return None


def parse_nodes(entries):
    """``["name=mac", ...]`` -> ``{mac: name}``."""
    nodes = {}
    for entry in entries or []:
        name, sep, mac = entry.partition("=")
        if not sep or not name:
            raise ValueError("--node takes NAME=MAC, got %r" % entry)
        nodes[normalise_mac(mac)] = name
    return nodes


class Listener(object):
    def __init__(self, args):
        self.state_dir = args.state_dir
        self.nodes = parse_nodes(args.node)
        self.pause = shlex.split(args.pause_command)
        self.unpause = shlex.split(args.unpause_command)
        self.log_path = args.log or os.path.join(self.state_dir, "power.log")
        self.paused = set()
        self.sockets = []
        for port in args.port:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if args.interface:
                # Only what arrives on the lab's LAN bridge (the packets wake-cluster.yml sends to its broadcast).
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, args.interface.encode() + b"\0")
            sock.bind((args.address, port))
            self.sockets.append(sock)
        self.poll = args.poll
        self.running = True

    def log(self, message):
        line = "%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), message)
        with open(self.log_path, "a") as handle:
            handle.write(line)

    def run_command(self, argv, node):
        result = subprocess.run(argv + [node], capture_output=True, text=True, check=False, timeout=60)
        detail = (result.stderr or result.stdout or "").strip()
        self.log("%s %s: rc %d%s" % (" ".join(argv), node, result.returncode, (" (%s)" % detail) if detail else ""))
        return result.returncode == 0

    def node_dir(self, node):
        return os.path.join(self.state_dir, "power", node)

    def check_requests(self):
        for node in sorted(set(self.nodes.values())):
            request = os.path.join(self.node_dir(node), REQUEST)
            if not os.path.exists(request):
                continue
            try:
                with open(request) as handle:
                    text = handle.read().strip()
                os.remove(request)
            except (IOError, OSError):
                continue
            self.log("suspend request from %s: %s" % (node, text))
            if self.run_command(self.pause, node):
                self.paused.add(node)
                self.log("%s paused (asleep) until a magic packet for its MAC arrives" % node)

    def handle_packet(self, payload, source, port):
        mac = magic_packet_mac(payload)
        if mac is None:
            return
        node = self.nodes.get(mac)
        self.log("magic packet for %s (%s) from %s:%d on UDP %d" % (mac, node or "not a lab node", source[0],
                                                                    source[1], port))
        if node and node in self.paused:
            if self.run_command(self.unpause, node):
                self.paused.discard(node)
                self.log("%s unpaused (awake)" % node)
        elif node:
            self.log("%s is not asleep (not paused by this listener): nothing to do" % node)

    def stop(self, unused_signum=None, unused_frame=None):
        self.running = False

    def serve(self):
        ports = ", ".join(str(sock.getsockname()[1]) for sock in self.sockets)
        nodes = ", ".join("%s=%s" % (name, mac) for mac, name in sorted(self.nodes.items()))
        self.log("listening on UDP %s for %s" % (ports, nodes))
        while self.running:
            self.check_requests()
            try:
                ready, unused_w, unused_x = select.select(self.sockets, [], [], self.poll)
            except InterruptedError:
                continue
            for sock in ready:
                payload, source = sock.recvfrom(2048)
                self.handle_packet(payload, source, sock.getsockname()[1])
        self.log("stopped")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, help="the lab's state directory (.lab): power/<node>/ inside")
    parser.add_argument("--node", action="append", required=True, help="NAME=MAC, once per node")
    parser.add_argument("--interface", default="", help="receive only on this interface (the lab LAN bridge)")
    parser.add_argument("--address", default="0.0.0.0", help="address to bind (default all)")  # nosec - LAB listener
    parser.add_argument("--port", type=int, action="append", help="UDP port (repeatable; default 9 and 7)")
    parser.add_argument("--pause-command", default="podman pause", help="argv prefix; the node name is appended")
    parser.add_argument("--unpause-command", default="podman unpause", help="argv prefix; the node name is appended")
    parser.add_argument("--log", default="", help="log file (default STATE_DIR/power.log)")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between looks for suspend requests")
    args = parser.parse_args(argv)
    args.port = args.port or [9, 7]
    listener = Listener(args)
    signal.signal(signal.SIGTERM, listener.stop)
    signal.signal(signal.SIGINT, listener.stop)
    listener.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
