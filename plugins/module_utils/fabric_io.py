# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O layer of dgx_spark.cluster.fabric_ip: every command, file, socket, clock and environment read it does.

Commands run only through the collection's CommandRunner.  Nothing here decides what to change: the pure core
(fabric.py) plans, fabric_run.py puts the steps in order, and this layer reads the host and carries out actions.
The small functions at the top are the file system, the network and the clock, kept apart so that unit tests can
replace them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
import tempfile
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

IP_TIMEOUT = 30
APPLY_TIMEOUT = 180
PING_TIMEOUT = 10  # ping -c 1 -W 2 ends after about 2 s (3 s seen on a dropping veth); the limit only guards a hang


# ---- file system, network, clock ---------------------------------------------------------------------------

def read_file(path):
    """(content, mode) of a file, or (None, None) when it does not exist."""
    try:
        with open(path, "r") as handle:
            content = handle.read()
        return content, os.stat(path).st_mode
    except (IOError, OSError):
        return None, None


def list_dir(path):
    try:
        return sorted(os.listdir(path))
    except (IOError, OSError):
        return []


def write_file(module, path, content):
    """Write atomically (temporary file in the same directory, then rename) and leave mode 0600."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, fabric.FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    os.chmod(path, fabric.FILE_MODE)  # atomic_move copies the old file's mode or applies the umask


def remove_file(path):
    if os.path.lexists(path):
        os.unlink(path)


def chmod_file(path, mode):
    os.chmod(path, mode)


def read_speed(ifname):
    content, dummy = read_file("/sys/class/net/%s/speed" % ifname)
    return content


def tcp_answers(host, port, timeout=2.0):
    """True when host answers on port: a connection, or a refusal (the host is there)."""
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
        conn.close()
        return True
    except socket.timeout:
        return False
    except socket.error as exc:
        return getattr(exc, "errno", None) == errno.ECONNREFUSED


def sleep(seconds):
    time.sleep(seconds)


# ---- the host, through commands and files ------------------------------------------------------------------

class FabricHost(object):
    """Reads the host and carries out actions.  ``done`` lists every action carried out, in order; a command that
    fails ends the module with cmd, rc, stdout and stderr, and the actions done before it."""

    def __init__(self, module):
        self.module = module
        self.runner = CommandRunner(module, default_timeout=IP_TIMEOUT)
        self.done = []
        self.ip = None
        self.tool = None
        self.ping = None

    # ---- commands ---------------------------------------------------------------------------------------------
    def find_commands(self, persist, need_ping):
        """Look up ip (required), ping and the persist command; returns the message naming a missing one, or None."""
        self.ip = self.runner.binary("ip")
        if need_ping:
            self.ping = self.runner.binary("ping", required=False, extra_paths=fabric.PING_DIRS)
            if not self.ping:
                return fabric.missing_ping_message()
        name = fabric.persist_command(persist)
        if name:
            self.tool = self.runner.binary(name, required=False)
            if not self.tool:
                return fabric.missing_persist_command_message(persist)
        return None

    def command_failed(self, msg, argv, rc, out, err):
        self.runner.fail(msg, argv, rc, out, err, changed=bool(self.done), actions=[a["text"] for a in self.done])

    def run_ip(self, argv, msg):
        rc, out, err = self.runner.run([self.ip] + list(argv), check=False)
        if rc != 0:
            self.command_failed(msg, [self.ip] + list(argv), rc, out, err)
        return out

    def gather(self):
        """(interfaces, routes) as ``ip -j`` shows them now; raises fabric.FabricError on output it cannot parse."""
        addr = self.run_ip(["-j", "addr", "show"], "cannot read addresses (ip -j addr show)")
        link = self.run_ip(["-j", "-d", "link", "show"], "cannot read links (ip -j -d link show)")
        route = self.run_ip(["-j", "route", "show"], "cannot read routes (ip -j route show)")
        return fabric.parse_interfaces(addr, link), fabric.parse_routes(route)

    def addresses(self):
        """Interfaces with their addresses (``ip -j addr show``), or None when that fails or cannot be parsed."""
        rc, out, dummy = self.runner.run([self.ip, "-j", "addr", "show"], check=False)
        try:
            return fabric.parse_interfaces(out) if rc == 0 else None
        except fabric.FabricError:
            return None

    def execute(self, action):
        """Carry out one runtime action (its ``ip`` argv, if any) and record it as done."""
        argv = action.get("argv")
        if argv:
            rc, out, err = self.runner.run([self.ip] + list(argv), check=False)
            if rc != 0 and action["kind"] == "addr_del" and self.address_gone(argv[2], argv[4]):
                rc = 0  # already gone (networkd or the kernel got there first): the goal is reached
            if rc != 0:
                self.command_failed("failed to %s" % action["text"], [self.ip] + list(argv), rc, out, err)
        self.done.append(action)

    def address_gone(self, cidr, ifname):
        rc, out, dummy = self.runner.run([self.ip, "-j", "addr", "show", "dev", ifname], check=False)
        if rc != 0:
            return True  # the interface itself is gone
        try:
            return not fabric.has_address(fabric.parse_interfaces(out), ifname, cidr)
        except fabric.FabricError:
            return False

    def speeds(self, names):
        """``{ifname: Mb/s or None}`` from sysfs, or from ethtool (when installed) where sysfs has no speed."""
        result = {}
        ethtool = None
        for name in names:
            speed = fabric.parse_sysfs_speed(read_speed(name))
            if speed is None:
                ethtool = ethtool or self.runner.binary("ethtool", required=False)
                if ethtool:
                    rc, out, dummy = self.runner.run([ethtool, name], check=False)
                    speed = fabric.parse_ethtool_speed(out) if rc == 0 else None
            result[name] = speed
        return result

    def apply(self, commands):
        """Run the apply commands in order; returns None, or why the first that failed did."""
        for action in commands:
            argv = fabric.apply_argv(self.tool, action)
            rc, out, err = self.runner.run(argv, check=False, timeout=APPLY_TIMEOUT)
            if rc != 0:
                return "%s failed (rc %s): %s" % (" ".join(argv), rc, (err or out).strip())
        return None

    def ping_peer(self, argv):
        """(rc, stdout, stderr) of one ping (``argv`` without the binary)."""
        return self.runner.run([self.ping] + list(argv), check=False, timeout=PING_TIMEOUT)

    # ---- files, network, environment --------------------------------------------------------------------------
    def current_files(self, persist, persist_file, nm_dir):
        """``{path: (content, mode)}`` of the module's own files that exist now."""
        listing = list_dir(nm_dir) if persist == "networkmanager" else []
        current = {}
        for path in fabric.owned_paths(persist, persist_file, nm_dir, listing):
            content, mode = read_file(path)
            if content is not None:
                current[path] = (content, mode)
        return current

    def write(self, action):
        """Carry out one file action (write, remove or mode); it is recorded as done by the caller."""
        if action["kind"] == "file_write":
            write_file(self.module, action["path"], action["after"])
        elif action["kind"] == "file_remove":
            remove_file(action["path"])
        elif action["kind"] == "file_mode":
            chmod_file(action["path"], fabric.FILE_MODE)

    @staticmethod
    def answers(host, port):
        return tcp_answers(host, port)

    @staticmethod
    def wait(seconds):
        sleep(seconds)

    @staticmethod
    def ssh_connection():
        return os.environ.get("SSH_CONNECTION")
