#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fabric_ip
short_description: Fabric addresses and MTU on the DGX Spark ConnectX-7 ports, at runtime and persisted
version_added: 0.1.0
description:
  - Gives each fabric port its IPv4 address on the interface that has carrier, sets the MTU, removes the same
    address from every other interface, makes sure the connected route exists, and persists the result (netplan
    or NetworkManager) so that address and MTU survive a reboot.
  - A DGX Spark shows each QSFP port as two netdevs (for example C(enp1s0f1np1) and C(enP2p1s0f1np1) are the two
    PCIe halves of the same port). List the names the address may live on in O(ports[].candidates); the first
    candidate with carrier is chosen and reported.
  - A candidate that is administratively down has no readable carrier. When such a candidate comes before the
    first candidate with carrier, the module brings it up (C(ip link set dev X up)), waits up to
    O(carrier_timeout) seconds for carrier, and then chooses. Interfaces brought up this way are left up.
  - The interface that holds the management address (O(mgmt_address), by default the server address of
    E(SSH_CONNECTION)) is never changed. As a candidate it is skipped; a duplicate fabric address on it is left in
    place with a warning. A port address equal to the management address, or a fabric network containing it, is
    refused.
  - The persisted file is owned by the module, written atomically with mode C(0600), rendered deterministically,
    and only rewritten and applied when its content differs. After C(netplan apply) (or C(nmcli connection up))
    the module checks that the management address is still on its interface (and, with O(mgmt_check_host), that
    the host still answers), retrying O(retries) times O(delay) seconds apart to ride through the short blip that
    C(netplan apply) causes. If the check still fails, it restores the previous file content (or removes the new
    file), applies again and fails. Runtime address and MTU changes made before that step only touch fabric
    interfaces and are kept; the error lists them.
  - With O(verify_peers) (default), every port that has a O(ports[].peer) is checked last, once addresses, MTU
    and the persisted file are in place - C(ping -c 1 -W 2 -M do -s <mtu-28> -I <chosen interface> <peer>), one
    echo of exactly O(mtu) bytes that may not be fragmented. A failing half is retried O(peer_retries) times one
    second apart (the peer may still be configuring). If any half still fails, the module fails with one message
    naming every failing half (interface, peer, MTU and the last line of the ping output). The configuration
    made before is kept, and the check never sets C(changed).
  - Runs only C(ip), C(netplan), C(nmcli), C(ping) (for O(ports[].peer)) and, when sysfs has no speed,
    C(ethtool), through the collection's command runner (argument lists, C(LC_ALL=C), time limits).
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  ports:
    description:
      - The fabric ports of this node, one entry per address.
      - Each chosen interface carries exactly one of these addresses; two ports that would choose the same
        interface are an error.
    type: list
    elements: dict
    required: true
    suboptions:
      candidates:
        description:
          - Interface names, in order of preference. The first with carrier wins.
          - It is an error when none of them exists (with O(state=present)).
        type: list
        elements: str
        required: true
      address:
        description:
          - IPv4 address with prefix length, for example C(10.10.10.1/24).
          - The network address, the broadcast address, C(/0) and C(/32), loopback, multicast and IPv6 are refused.
          - The same IP on two ports is refused.
        type: str
        required: true
      peer:
        description:
          - IPv4 address of the other node on this half, without prefix length, for example C(10.10.10.2).
          - When set (and O(verify_peers) is true), the module pings it with don't-fragment packets of O(mtu)
            bytes out of the chosen interface after configuring, and fails if no echo comes back.
          - It must lie inside the network of O(ports[].address) and differ from that address (and from the other
            ports' addresses); the network and broadcast addresses are refused.
        type: str
  mtu:
    description:
      - MTU set on every chosen interface (C(ip link set dev X mtu N up)) and written to the persisted file.
      - Accepted range 68 (IPv4 minimum) to 9216 (the largest jumbo frame common to switches). The ConnectX-7
        itself accepts up to 9978, but RoCE uses at most a 4096-byte path MTU, so nothing above 9000 adds RDMA
        bandwidth, and a value above 9216 breaks as soon as a switch sits between the nodes.
      - A value above the device maximum reported by C(ip -d link) is refused before anything changes.
      - With O(state=absent) the MTU is left as it is.
    type: int
    default: 9000
  require_carrier:
    description:
      - When true, fail (naming every port, its candidates, their operstate and carrier) if no candidate of a port
        has carrier.
      - When false, fall back to the first existing candidate, with a warning.
    type: bool
    default: true
  carrier_timeout:
    description:
      - Seconds to wait for carrier after bringing up candidates that were administratively down.
    type: int
    default: 10
  state:
    description:
      - V(present) configures and persists the addresses.
      - V(absent) removes each port's address from its candidates (never from the management interface) and
        removes the module's own persisted file(s), then applies. It does not reset the MTU.
    type: str
    choices: [present, absent]
    default: present
  persist:
    description:
      - V(netplan) (DGX OS default) writes O(persist_file) with the C(networkd) renderer and runs C(netplan apply).
      - V(networkmanager) writes one keyfile per chosen interface,
        C(<nm_connection_dir>/dgx-spark-fabric-<if>.nmconnection), runs C(nmcli connection reload) and
        C(nmcli connection up dgx-spark-fabric-<if>). Keyfiles of this name for other interfaces are removed.
      - V(none) changes the runtime state only.
      - A missing C(netplan) or C(nmcli) command is an error before anything changes.
    type: str
    choices: [netplan, networkmanager, none]
    default: netplan
  persist_file:
    description:
      - The netplan file owned by this module (O(persist=netplan) only).
    type: path
    default: /etc/netplan/40-dgx-spark-fabric.yaml
  nm_connection_dir:
    description:
      - Directory of the NetworkManager keyfiles (O(persist=networkmanager) only).
    type: path
    default: /etc/NetworkManager/system-connections
  mgmt_address:
    description:
      - The address this node is managed through. The interface holding it is never changed, and it must still
        be there after the persisted configuration is applied.
      - Default is the server address in E(SSH_CONNECTION) when the module sees that variable (not the case under
        C(become) with a C(sudo) that resets the environment, nor with local or container connections); pass
        it explicitly, for example C({{ ansible_facts.default_ipv4.address }}), to be sure.
      - When it is unknown, only O(mgmt_check_host) (if set) guards the apply step, and a warning says so.
    type: str
  mgmt_check_host:
    description:
      - Host that must still answer a TCP connection on O(mgmt_check_port) after the apply step (a refused
        connection counts as an answer). For example the control node or the default gateway.
    type: str
  mgmt_check_port:
    description:
      - TCP port for O(mgmt_check_host).
    type: int
    default: 22
  retries:
    description:
      - How many times the management check is repeated after the first failure.
    type: int
    default: 10
  delay:
    description:
      - Seconds between two management checks.
    type: float
    default: 1.0
  verify_peers:
    description:
      - Ping O(ports[].peer) of every port that has one, after everything is configured, and fail if a half does
        not pass O(mtu)-byte frames. Ports without O(ports[].peer) are never checked.
      - When false, the checks are reported as skipped. Nothing is checked with O(state=absent).
    type: bool
    default: true
  peer_retries:
    description:
      - How many times a failing peer check is repeated, one second apart, before the module fails.
      - A ping refused for lack of privilege is not repeated.
    type: int
    default: 3
notes:
  - IPv4 only. Addresses other than the ports' own IPs on the chosen interfaces are left alone.
  - The netplan file sets C(dhcp4), C(dhcp6) false and C(link-local) empty (no IPv6 link-local address on the
    fabric), which keeps the RoCE GID table short and its indices stable.
  - In check mode the module reads C(ip -j) output and files (and pings peers, see below) only; a candidate that
    is administratively down is assumed to get carrier once brought up (its carrier cannot be read without
    changing it).
  - The peer check is read-only and also runs in check mode, for each port whose address is already on the
    chosen interface and whose MTU already equals O(mtu) (and that is up); other ports are reported in
    RV(peer_checks) as skipped, with the reason.
  - C(ping -M do -I <if>) needs root or C(CAP_NET_RAW) (or ICMP datagram sockets allowed by
    C(net.ipv4.ping_group_range)); run the module with C(become). C(ping) (iputils) is looked up in E(PATH),
    C(/usr/bin), C(/bin), C(/usr/sbin) and C(/sbin); when a port has a peer and it is missing, the module fails
    before changing anything.
seealso:
  - name: netplan YAML reference
    description: The schema the persisted file follows.
    link: https://netplan.readthedocs.io/en/stable/netplan-yaml/
attributes:
  check_mode:
    support: full
    description: Reads state only (and runs the read-only peer C(ping) where address and MTU are already in
      place) and returns the same C(changed), the planned C(actions) and the diff.
  diff_mode:
    support: full
    description: Shows IPv4 addresses, MTU/link state and every file touched, before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing and returns C(changed=false).
  platform:
    support: full
    platforms: posix
    description: Linux with iproute2 (C(ip -j)); netplan or NetworkManager for persistence.
"""

EXAMPLES = r"""
- name: Fabric address on whichever half of the cabled QSFP port has carrier (persisted with netplan)
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1, enP2p1s0f1np1]
        address: 10.10.10.1/24
    mtu: 9000
    mgmt_address: "{{ ansible_facts.default_ipv4.address }}"

- name: Both halves of the port, each on its own subnet (as NVIDIA's two-Spark guide does)
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1, enp1s0f0np0]
        address: 10.10.10.1/24
      - candidates: [enP2p1s0f1np1, enP2p1s0f0np0]
        address: 10.10.11.1/24
    mgmt_address: 192.168.86.38
    mgmt_check_host: 192.168.86.1
  register: fabric

- name: Two halves, each checked for 9000-byte frames to the other node in the same task
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1, enp1s0f0np0]
        address: 10.10.10.1/24
        peer: 10.10.10.2
      - candidates: [enP2p1s0f1np1, enP2p1s0f0np0]
        address: 10.10.11.1/24
        peer: 10.10.11.2
    mtu: 9000
    peer_retries: 5
    mgmt_address: "{{ ansible_facts.default_ipv4.address }}"
  become: true

- name: Show the chosen interfaces
  ansible.builtin.debug:
    msg: "{{ fabric.ports | map(attribute='name') | list }}"

- name: Persist through NetworkManager keyfiles instead
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1, enP2p1s0f1np1]
        address: 10.10.10.2/24
    persist: networkmanager

- name: Runtime only, accept a port without carrier (lab)
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1]
        address: 10.10.10.2/24
    persist: none
    require_carrier: false

- name: Remove what the module manages
  dgx_spark.cluster.fabric_ip:
    ports:
      - candidates: [enp1s0f1np1, enP2p1s0f1np1]
        address: 10.10.10.1/24
    state: absent
"""

RETURN = r"""
ports:
  description: One entry per port, in the order given. Values read after the run (in check mode, as found).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The chosen interface (null with O(state=absent)).
      type: str
      sample: enp1s0f1np1
    address:
      description: The address, normalised.
      type: str
      sample: 10.10.10.1/24
    mtu:
      description: MTU of the chosen interface.
      type: int
      sample: 9000
    carrier:
      description: Whether the chosen interface has carrier (null when it is administratively down).
      type: bool
      sample: true
    operstate:
      description: Operational state of the chosen interface (C(UP), C(DOWN), ...).
      type: str
      sample: UP
    speed_mbps:
      description: Link speed from C(/sys/class/net/<if>/speed) (or C(ethtool)); null when unknown (no carrier).
      type: int
      sample: 200000
    reason:
      description: Why this interface was chosen.
      type: str
      sample: first candidate with carrier
    candidates:
      description: Every candidate considered, with C(name), C(exists), C(operstate), C(carrier), C(mtu) and
        C(skipped) (the reason it was not eligible, or null).
      type: list
      elements: dict
persist_file:
  description: The netplan file (O(persist=netplan)), the first keyfile (O(persist=networkmanager)), or null.
  returned: always
  type: str
  sample: /etc/netplan/40-dgx-spark-fabric.yaml
persist_files:
  description: Every file the module keeps for the requested state (empty for O(state=absent) and O(persist=none)).
  returned: always
  type: list
  elements: str
actions:
  description: Human-readable changes made (in check mode, the changes that would be made), in order.
  returned: always
  type: list
  elements: str
  sample:
    - set MTU 9000 (was 1500) on enp1s0f1np1
    - remove duplicate 10.10.10.1/24 from enP2p1s0f1np1 (10.10.10.1 belongs on enp1s0f1np1)
    - add 10.10.10.1/24 to enp1s0f1np1
    - create /etc/netplan/40-dgx-spark-fabric.yaml (mode 0600)
    - netplan apply
mgmt_address:
  description: The management address guarded, and where it came from.
  returned: always
  type: dict
  contains:
    address:
      description: The address, or null when unknown.
      type: str
    source:
      description: C(option), C(SSH_CONNECTION) or null.
      type: str
    interfaces:
      description: The interfaces holding it.
      type: list
      elements: str
peer_checks:
  description:
    - One entry per port that has O(ports[].peer), in the order given (empty with O(state=absent)).
    - Also returned when a check fails the module.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The chosen interface the echo leaves from.
      type: str
      sample: enP2p1s0f1np1
    peer:
      description: The peer address pinged.
      type: str
      sample: 10.10.11.2
    mtu:
      description: Size in bytes of the IP packet sent (O(mtu)); the ICMP payload is 28 bytes less.
      type: int
      sample: 9000
    ok:
      description: Whether an echo reply came back; null when the check was skipped.
      type: bool
      sample: true
    attempts:
      description: How many times C(ping) ran (0 when skipped).
      type: int
      sample: 1
    output_tail:
      description: The last lines of the last C(ping) output (standard output, then error output); null when
        C(ping) did not run.
      type: str
      sample: "--- 10.10.11.2 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms"
    summary:
      description: Why the check failed (the line used in the failure message); null unless it failed.
      type: str
      sample: 1 packets transmitted, 0 received, 100% packet loss
    skipped:
      description: Why the check was not run (for example in check mode before the address or MTU is in place,
        or with O(verify_peers=false)); null when it ran.
      type: str
      sample: "check mode: 10.10.11.1/24 is not on enP2p1s0f1np1 yet; the real run checks after configuring it"
rolled_back:
  description: True when the apply step failed the management check and the previous files were restored.
  returned: failure
  type: bool
"""

import errno
import os
import socket
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

ARGUMENT_SPEC = dict(
    ports=dict(type="list", elements="dict", required=True, options=dict(
        candidates=dict(type="list", elements="str", required=True),
        address=dict(type="str", required=True),
        peer=dict(type="str"),
    )),
    mtu=dict(type="int", default=9000),
    require_carrier=dict(type="bool", default=True),
    carrier_timeout=dict(type="int", default=10),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    persist=dict(type="str", default="netplan", choices=["netplan", "networkmanager", "none"]),
    persist_file=dict(type="path", default=fabric.NETPLAN_FILE),
    nm_connection_dir=dict(type="path", default=fabric.NM_DIR),
    mgmt_address=dict(type="str"),
    mgmt_check_host=dict(type="str"),
    mgmt_check_port=dict(type="int", default=22),
    retries=dict(type="int", default=10),
    delay=dict(type="float", default=1.0),
    verify_peers=dict(type="bool", default=True),
    peer_retries=dict(type="int", default=3),
)

IP_TIMEOUT = 30
APPLY_TIMEOUT = 180
PING_TIMEOUT = 10  # ping -c 1 -W 2 ends after about 2 s (3 s seen on a dropping veth); the limit only guards a hang
PING_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
PEER_DELAY = 1.0


# ---- host I/O, kept in small functions so unit tests can replace them ------------------------------------------

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


class FabricIp(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module, default_timeout=IP_TIMEOUT)
        self.done = []
        self.warnings = []
        self.ip = None
        self.tool = None
        self.ping = None

    # ---- helpers --------------------------------------------------------------------------------------------
    def fail(self, msg, actions=None, **extra):
        actions = self.done if actions is None else actions
        extra.setdefault("changed", bool(actions))
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.fail_json(msg=msg, actions=[a["text"] for a in actions], **extra)

    def run_ip(self, argv, msg):
        rc, out, err = self.runner.run([self.ip] + list(argv), check=False)
        if rc != 0:
            self.runner.fail(msg, [self.ip] + list(argv), rc, out, err, changed=bool(self.done),
                             actions=[a["text"] for a in self.done])
        return out

    def gather(self):
        try:
            addr = self.run_ip(["-j", "addr", "show"], "cannot read addresses (ip -j addr show)")
            link = self.run_ip(["-j", "-d", "link", "show"], "cannot read links (ip -j -d link show)")
            route = self.run_ip(["-j", "route", "show"], "cannot read routes (ip -j route show)")
            return fabric.parse_interfaces(addr, link), fabric.parse_routes(route)
        except fabric.FabricError as exc:
            self.fail(str(exc))

    def execute(self, action):
        argv = action.get("argv")
        if argv:
            rc, out, err = self.runner.run([self.ip] + list(argv), check=False)
            if rc != 0 and action["kind"] == "addr_del" and self.address_gone(argv[2], argv[4]):
                rc = 0  # already gone (networkd or the kernel got there first): the goal is reached
            if rc != 0:
                self.runner.fail("failed to %s" % action["text"], [self.ip] + list(argv), rc, out, err,
                                 changed=bool(self.done), actions=[a["text"] for a in self.done])
        self.done.append(action)

    def address_gone(self, cidr, ifname):
        rc, out, dummy = self.runner.run([self.ip, "-j", "addr", "show", "dev", ifname], check=False)
        if rc != 0:
            return True  # the interface itself is gone
        try:
            iface = fabric.parse_interfaces(out).get(ifname, {"addrs": []})
        except fabric.FabricError:
            return False
        return "%s/%d" % (cidr.split("/")[0], int(cidr.split("/")[1])) not in [
            "%s/%d" % (a["local"], a["prefixlen"]) for a in iface["addrs"]]

    def speeds(self, selections):
        result = {}
        ethtool = None
        for sel in selections:
            name = sel["name"]
            if not name:
                continue
            speed = fabric.parse_sysfs_speed(read_speed(name))
            if speed is None:
                ethtool = ethtool or self.runner.binary("ethtool", required=False)
                if ethtool:
                    rc, out, dummy = self.runner.run([ethtool, name], check=False)
                    speed = fabric.parse_ethtool_speed(out) if rc == 0 else None
            result[name] = speed
        return result

    def mgmt(self, interfaces):
        address, source = self.params["mgmt_address"], "option"
        if not address:
            address, source = fabric.mgmt_from_ssh_connection(os.environ.get("SSH_CONNECTION")), "SSH_CONNECTION"
        if not address:
            address, source = None, None
            self.warnings.append("management address unknown (no mgmt_address, no SSH_CONNECTION): no interface is "
                                 "protected and the apply step is only checked through mgmt_check_host")
        holders = fabric.find_address_holders(interfaces, address) if address else []
        if address and not holders:
            self.warnings.append("management address %s is not on any local interface; nothing to protect" % address)
        return {"address": address, "source": source, "interfaces": holders}

    # ---- persistence ------------------------------------------------------------------------------------------
    def current_files(self, persist):
        paths = []
        if persist == "netplan":
            paths = [self.params["persist_file"]]
        elif persist == "networkmanager":
            directory = self.params["nm_connection_dir"]
            paths = [os.path.join(directory, f) for f in list_dir(directory) if fabric.is_nm_owned(f)]
        current = {}
        for path in paths:
            content, mode = read_file(path)
            if content is not None:
                current[path] = (content, mode)
        return current

    def apply(self, commands):
        for action in commands:
            if action["command"] == "netplan_apply":
                argv = [self.tool, "apply"]
            elif action["command"] == "nm_reload":
                argv = [self.tool, "connection", "reload"]
            else:
                argv = [self.tool, "--wait", "60", "connection", "up", "id", action["conn_id"]]
            rc, out, err = self.runner.run(argv, check=False, timeout=APPLY_TIMEOUT)
            if rc != 0:
                return False, "%s failed (rc %s): %s" % (" ".join(argv), rc, (err or out).strip())
        return True, ""

    def verify_mgmt(self, mgmt):
        host = self.params["mgmt_check_host"]
        if not mgmt["interfaces"] and not host:
            return True, "not checked"
        why = ""
        for attempt in range(self.params["retries"] + 1):
            if attempt:
                sleep(self.params["delay"])
            if mgmt["interfaces"]:
                rc, out, dummy = self.runner.run([self.ip, "-j", "addr", "show"], check=False)
                try:
                    holders = fabric.find_address_holders(fabric.parse_interfaces(out), mgmt["address"])
                except fabric.FabricError:
                    holders = []
                if rc != 0 or not set(holders) & set(mgmt["interfaces"]):
                    why = "management address %s is no longer on %s" % (mgmt["address"], ", ".join(mgmt["interfaces"]))
                    continue
            if host and not tcp_answers(host, self.params["mgmt_check_port"]):
                why = "%s does not answer on TCP port %s" % (host, self.params["mgmt_check_port"])
                continue
            return True, "ok"
        return False, why

    def persist(self, persist, file_actions, desired, mgmt):
        if not file_actions:
            return
        for action in file_actions:
            self.write_action(action)
            self.done.append(action)
        commands = fabric.apply_actions(persist, file_actions, desired)
        if not commands:
            return
        ok, why = self.apply(commands)
        if ok:
            ok, why = self.verify_mgmt(mgmt)
        for command in commands:
            self.done.append(command)
        if ok:
            return
        # roll back our own change: previous content back (or our new file removed), apply again
        restore = []
        for action in file_actions:
            if action["kind"] == "file_mode":
                continue
            if action["before"] is None:
                remove_file(action["path"])
                restore.append(fabric.make_action("file_remove", "removed new %s" % action["path"],
                                                  path=action["path"], before=action["after"], after=None))
            else:
                write_file(self.module, action["path"], action["before"])
                restore.append(fabric.make_action("file_write", "restored previous %s" % action["path"],
                                                  path=action["path"], before=action["after"], after=action["before"]))
        reapply_ok, reapply_why = self.apply(fabric.apply_actions(persist, restore, dict(
            (a["path"], a["after"]) for a in restore if a["after"] is not None)))
        back, dummy = self.verify_mgmt(mgmt)
        self.done.extend(restore)
        self.fail("%s after applying %s; rolled back (%s; applied again%s); management %s. Runtime changes already "
                  "made on fabric interfaces were kept."
                  % (why, ", ".join(a["path"] for a in file_actions), "; ".join(a["text"] for a in restore) or
                     "nothing to restore", "" if reapply_ok else ", but that failed: %s" % reapply_why,
                     "reachable again" if back else "STILL NOT reachable"),
                  rolled_back=True, changed=True)

    def write_action(self, action):
        if action["kind"] == "file_write":
            write_file(self.module, action["path"], action["after"])
        elif action["kind"] == "file_remove":
            remove_file(action["path"])
        elif action["kind"] == "file_mode":
            chmod_file(action["path"], fabric.FILE_MODE)

    # ---- peer checks ------------------------------------------------------------------------------------------
    def check_peers(self, selections, interfaces, actions, check=False):
        """Ping each port's peer (read-only, also in check mode); fail naming every half that still fails."""
        p = self.params
        checks = fabric.plan_peer_checks(selections, interfaces, p["mtu"], p["verify_peers"], check,
                                         p["require_carrier"])
        pending = [c for c in checks if c["todo"]]
        for attempt in range(p["peer_retries"] + 1):
            if not pending:
                break
            if attempt:
                sleep(PEER_DELAY)
            for entry in pending:
                rc, out, err = self.runner.run([self.ping] + entry["argv"], check=False, timeout=PING_TIMEOUT)
                fabric.record_ping(entry, rc, out, err)
            pending = [c for c in pending if c["todo"]]
        report = fabric.peer_report(checks)
        message = fabric.peer_failure_message(checks, p["mtu"])
        if message:
            self.fail(message, actions=actions, peer_checks=report)
        return report

    # ---- the run ----------------------------------------------------------------------------------------------
    def converge(self, selections, state, mgmt):
        """Run the runtime plan until nothing is left (the kernel adds the connected route with the address)."""
        for dummy in range(3):
            interfaces, routes = self.gather()
            try:
                actions, dummy_warnings = fabric.plan_runtime(selections, interfaces, routes, self.params["mtu"],
                                                              state, mgmt["interfaces"])
            except fabric.FabricError as exc:
                self.fail(str(exc))
            if not actions:
                return interfaces
            for action in actions:
                self.execute(action)
        self.fail("runtime state does not converge; still to do: %s" % "; ".join(a["text"] for a in actions))

    def choose(self, ports, interfaces, mgmt, mode):
        try:
            selections, probe = fabric.choose_interfaces(ports, interfaces, mgmt["interfaces"],
                                                         self.params["require_carrier"], mode)
            if mode != "probe" or not probe:
                fabric.check_device_mtu(selections, interfaces, self.params["mtu"])
            return selections, probe
        except fabric.FabricError as exc:
            self.fail(str(exc))

    def probe(self, ports, names, mgmt):
        for action in fabric.probe_actions(names):
            self.execute(action)
        for waited in range(max(self.params["carrier_timeout"], 0) + 1):
            if waited:
                sleep(1)
            interfaces, routes = self.gather()
            if fabric.probe_settled(ports, interfaces, names, mgmt["interfaces"]):
                break
        return interfaces, routes

    def run(self):
        p = self.params
        check = self.module.check_mode
        try:
            ports = fabric.normalize_ports(p["ports"])
            fabric.validate_mtu(p["mtu"])
            fabric.validate_peer_retries(p["peer_retries"])
        except fabric.FabricError as exc:
            self.fail(str(exc))
        self.ip = self.runner.binary("ip")
        if p["verify_peers"] and p["state"] == "present" and any(port["peer"] for port in ports):
            self.ping = self.runner.binary("ping", required=False, extra_paths=PING_DIRS)
            if not self.ping:
                self.fail("verify_peers needs the ping command (iputils-ping), which is not installed (searched PATH, "
                          "%s); install it, or set verify_peers=false" % ", ".join(PING_DIRS))
        if p["persist"] != "none":
            name = "netplan" if p["persist"] == "netplan" else "nmcli"
            self.tool = self.runner.binary(name, required=False)
            if not self.tool:
                self.fail("persist=%s needs the %s command, which is not installed (searched PATH, /usr/sbin, /sbin); "
                          "install it, choose another persist method, or use persist=none"
                          % (p["persist"], name))
        before, routes = self.gather()
        interfaces = before
        mgmt = self.mgmt(before)
        try:
            fabric.check_mgmt_conflicts(ports, mgmt["address"])
        except fabric.FabricError as exc:
            self.fail(str(exc))
        self.warnings.extend(fabric.shared_network_warnings(ports))

        probe = []
        if p["state"] == "present":
            # the prediction validates the request before anything changes (and is the check-mode plan)
            selections, probe = self.choose(ports, before, mgmt, "assume")
            if not check:
                selections, need = self.choose(ports, before, mgmt, "probe")
                if need:
                    interfaces, routes = self.probe(ports, need, mgmt)
                    selections, dummy = self.choose(ports, interfaces, mgmt, "final")
                probe = []
            for sel in selections:
                if sel["name"] and interfaces[sel["name"]].get("carrier") is False:
                    self.warnings.append("%s has no carrier; %s configured anyway (require_carrier=false)"
                                         % (sel["name"], sel["port"]["address"]))
        else:
            selections = fabric.absent_selections(ports, before, mgmt["interfaces"])

        runtime, warnings = fabric.plan_runtime(selections, interfaces, routes, p["mtu"], p["state"],
                                                mgmt["interfaces"], probed=probe)
        self.warnings.extend(warnings)
        entries = fabric.desired_entries(selections)
        desired = fabric.desired_files(p["persist"], p["state"], entries, p["mtu"], p["persist_file"],
                                       p["nm_connection_dir"])
        file_actions = fabric.plan_files(desired, self.current_files(p["persist"]))

        if check:
            plan = fabric.probe_actions(probe) + runtime + file_actions + fabric.apply_actions(
                p["persist"], file_actions, desired)
            peer_checks = self.check_peers(selections, before, plan, check=True)
            self.exit(plan, selections, before, runtime + fabric.probe_actions(probe), file_actions, desired,
                      mgmt, before, peer_checks)

        for action in runtime:
            self.execute(action)
        self.converge(selections, p["state"], mgmt)
        self.persist(p["persist"], file_actions, desired, mgmt)
        after = self.converge(selections, p["state"], mgmt)
        peer_checks = self.check_peers(selections, after, self.done)
        self.exit(self.done, selections, before, self.done, file_actions, desired, mgmt, after, peer_checks,
                  real=True)

    def exit(self, actions, selections, before, runtime, file_actions, desired, mgmt, now, peer_checks,
             real=False):
        persist_files = sorted(desired)
        if self.params["persist"] == "netplan":
            persist_file = self.params["persist_file"]
        else:
            persist_file = persist_files[0] if persist_files else None
        result = dict(
            changed=bool(actions),
            actions=[a["text"] for a in actions],
            ports=fabric.port_report(selections, now, self.speeds(selections)),
            persist_file=persist_file,
            persist_files=persist_files,
            mgmt_address=mgmt,
            peer_checks=peer_checks,
        )
        if self.module._diff:
            result["diff"] = fabric.build_diff(before, selections, [a for a in runtime if a.get("argv")],
                                               file_actions, after=now if real else None)
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    FabricIp(module).run()


if __name__ == "__main__":
    main()
