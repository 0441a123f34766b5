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
          - Each name must be 1 to 15 characters from C(A-Z a-z 0-9 _ . -), starting with a letter or digit (the
            rule the playbooks' preflight applies); any other name is refused before anything changes.
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
      - Accepted range 1280 (the smallest MTU IPv6 allows) to 9216 (the largest jumbo frame common to switches),
        the same range the playbooks' preflight checks. The ConnectX-7 itself accepts up to 9978, but RoCE uses at
        most a 4096-byte path MTU, so nothing above 9000 adds RDMA bandwidth, and a value above 9216 breaks as
        soon as a switch sits between the nodes.
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils.fabric_io import FabricHost
from ansible_collections.dgx_spark.cluster.plugins.module_utils.fabric_run import FabricRun, RunFailed

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


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run = FabricRun(FabricHost(module), module.params, module.check_mode, module._diff)
    try:
        result = run.run()
    except RunFailed as exc:
        for warning in run.warnings:
            module.warn(warning)
        module.fail_json(msg=exc.msg, **exc.result)
    for warning in run.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
