#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: roce_check
short_description: Read-only validation of a RoCE fabric (ConnectX-7 on DGX Spark, or soft-RoCE)
version_added: 0.1.0
description:
  - Discovers the RDMA ports and their netdevs from sysfs and judges each checked port, that is port state
    C(ACTIVE), physical state C(LinkUp), link speed, netdev MTU, active RDMA MTU, an IPv4 address on the
    netdev and the RoCE v2 GID that carries it (its index is reported, never assumed), and the
    netdev-to-device mapping.
  - The active RDMA MTU comes from C(ibv_devinfo) (sysfs does not expose it); C(rdma link show) fills in
    the netdev and states where sysfs lacks them and cross-checks the mapping; C(ip -j addr show) gives the
    IPv4 addresses.
  - Optionally measures RDMA write bandwidth with C(ib_write_bw) between this node and a peer, one device
    after the other. The same task runs on both nodes at once, one with O(bandwidth_role=server) and one
    with O(bandwidth_role=client).
  - Never changes the system; C(changed) is always false.
  - Returns NCCL settings (C(NCCL_IB_HCA), C(NCCL_IB_GID_INDEX), C(NCCL_SOCKET_IFNAME)) for the healthy
    devices of this node.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The read-only checks run in check mode; the bandwidth test does not (it is reported as skipped).
  diff_mode:
    support: none
  idempotent:
    description: Running the action twice in a row gives the same outcome and changes nothing.
    support: full
    details:
      - The module only reads. Bandwidth figures vary from run to run.
  platform:
    platforms: linux
options:
  devices:
    description:
      - RDMA devices to check, as C(name) (every port of the device) or C(name:port).
      - A named device that does not exist is a failure.
      - When empty, every RoCE port (link layer Ethernet) whose netdev holds an IPv4 address inside
        O(fabric_subnets) is checked (any IPv4 address when O(fabric_subnets) is empty).
    type: list
    elements: str
    default: []
  fabric_subnets:
    description:
      - IPv4 networks (CIDR) of the fabric. Selects the ports to check when O(devices) is empty, and picks
        which address of a netdev the RoCE v2 GID must carry.
    type: list
    elements: str
    default: []
  sysfs_root:
    description:
      - Where sysfs is mounted. Tests point it at a fake tree.
    type: path
    default: /sys
  min_speed_mbps:
    description:
      - Minimum link speed per port in Mb/s, as the netdev reports it (ethtool C(Speed)); the RDMA port rate
        is used when the netdev speed is unknown.
      - Each DGX Spark half (for example C(enp1s0f1np1) and C(enP2p1s0f1np1)) reports the full
        200000 Mb/s of the cabled QSFP port, although one half carries about 100 Gb/s; a port
        negotiated down to 100G by a switch reports 100000 per half.
      - V(0) disables the check.
    type: int
    default: 200000
  min_mtu:
    description:
      - Minimum netdev MTU. V(0) disables the check.
    type: int
    default: 9000
  min_active_mtu:
    description:
      - Minimum active RDMA MTU in bytes (C(active_mtu) of C(ibv_devinfo)). RoCE picks the largest IB MTU that
        fits into the netdev MTU, so 4096 needs jumbo frames.
      - V(0) disables the check (and the need for C(ibv_devinfo)).
    type: int
    default: 4096
  fail_on_error:
    description:
      - Fail with one message listing every failed check per device. When false, the same text is
        returned as warnings and the task succeeds.
    type: bool
    default: true
  bandwidth_test:
    description:
      - Run the C(ib_write_bw) bandwidth test. Skipped in check mode.
      - Only ports that passed the read-only checks take part.
    type: bool
    default: false
  bandwidth_role:
    description:
      - V(server) starts one C(ib_write_bw) server per checked device on this node, in turn, and waits for
        the client; V(client) connects to O(peer) and judges the result.
      - Both nodes must run the task at the same time (one task for both hosts, no C(serial) of one, at least
        two forks); the client retries a refused connection until O(bandwidth_timeout).
      - Required when O(bandwidth_test=true).
    type: str
    choices: [server, client]
  peer:
    description:
      - Address of the server node for the client (the TCP exchange of perftest). The RDMA traffic itself
        flows between the GIDs of the paired devices.
      - Required when O(bandwidth_role=client).
    type: str
  min_bandwidth_gbps:
    description:
      - Minimum average RDMA write bandwidth per device in Gb/s (10^9 bit/s), judged on the client.
      - The default fits one DGX Spark half (NVIDIA measured 92.57 and 97.28 Gb/s on the two halves).
    type: float
    default: 90.0
  bandwidth_duration:
    description:
      - Seconds each C(ib_write_bw) run measures (C(-D)).
    type: int
    default: 5
  bandwidth_timeout:
    description:
      - Seconds one device's run may take, including the client's wait for its server. Every
        C(ib_write_bw) process is killed when it expires, so no server is left behind.
    type: int
    default: 60
  bandwidth_port:
    description:
      - First TCP port of the perftest exchange; the n-th device (sorted by name) uses O(bandwidth_port) + n.
    type: int
    default: 18515
requirements:
  - iproute2 (C(ip -j)) on the target
  - ibverbs-utils (C(ibv_devinfo)) when O(min_active_mtu) is not V(0)
  - perftest (C(ib_write_bw)) when O(bandwidth_test=true)
notes:
  - C(rdma) (iproute2) is used when present.
  - Run with C(become) only if sysfs or the tools need it; reading sysfs and C(ibv_devinfo) work unprivileged on
    most systems.
seealso:
  - name: NVIDIA DGX Spark playbooks, connect two Sparks
    description: The reference ib_write_bw figures for one QSFP cable (92.57 + 97.28 Gb/s).
    link: https://github.com/NVIDIA/dgx-spark-playbooks
"""

EXAMPLES = r"""
- name: Check every fabric port of both nodes
  dgx_spark.cluster.roce_check:
    fabric_subnets: [10.10.10.0/24]
  register: roce

- name: Show the NCCL settings of this node
  ansible.builtin.debug:
    var: roce.nccl_env

- name: Report without failing (warnings instead)
  dgx_spark.cluster.roce_check:
    devices: [rocep1s0f1, roceP2p1s0f1]
    fail_on_error: false

- name: Bandwidth between the two nodes, one task for both hosts at the same time
  dgx_spark.cluster.roce_check:
    fabric_subnets: [10.10.10.0/24]
    bandwidth_test: true
    bandwidth_role: "{{ 'server' if inventory_hostname == groups['control_plane'][0] else 'client' }}"
    peer: "{{ hostvars[groups['control_plane'][0]].fabric_address }}"
    min_bandwidth_gbps: 90
"""

RETURN = r"""
devices:
  description: One entry per checked RDMA port.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: RDMA device name.
      type: str
      sample: rocep1s0f1
    port:
      description: Port number.
      type: int
      sample: 1
    netdev:
      description: Netdev bound to the port, or null.
      type: str
      sample: enp1s0f1np1
    netdev_source:
      description: Where the mapping came from (C(sysfs gid_attrs), C(rdma link) or C(sysfs device/net)).
      type: str
      sample: sysfs gid_attrs
    link_layer:
      description: Link layer from sysfs.
      type: str
      sample: Ethernet
    state:
      description: Port state.
      type: str
      sample: ACTIVE
    phys_state:
      description: Physical port state.
      type: str
      sample: LinkUp
    rate:
      description: The RDMA port rate as sysfs spells it.
      type: str
      sample: 200 Gb/sec (4X HDR)
    speed_mbps:
      description: Link speed in Mb/s (netdev speed, else RDMA rate), or null.
      type: int
      sample: 200000
    speed_source:
      description: C(netdev) or C(rdma rate).
      type: str
      sample: netdev
    mtu:
      description: Netdev MTU.
      type: int
      sample: 9000
    active_mtu:
      description: Active RDMA MTU from ibv_devinfo, or null when unknown.
      type: int
      sample: 4096
    ipv4:
      description: The netdev's IPv4 address the GID check looked for.
      type: str
      sample: 10.10.10.1
    gid_index:
      description: Index of the RoCE v2 GID that carries RV(devices[].ipv4), or null.
      type: int
      sample: 3
    gid:
      description: That GID as sysfs spells it.
      type: str
      sample: "0000:0000:0000:0000:0000:ffff:0a0a:0a01"
    checks:
      description:
        - Per check (C(netdev), C(port_state), C(phys_state), C(speed), C(mtu), C(active_mtu), C(ipv4),
          C(roce_v2_gid), and C(bandwidth) when the test ran) a dict with C(ok), C(value) and C(expected).
        - Checks disabled by a threshold of V(0) are absent.
      type: dict
      sample: {"mtu": {"ok": true, "value": 9000, "expected": ">= 9000"}}
    ok:
      description: Whether every check of the port passed.
      type: bool
      sample: true
ignored:
  description: RDMA ports not selected by the default selection, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "rocep1s0f0", "port": 1, "netdev": "enp1s0f0np0", "reason": "netdev enp1s0f0np0 has no IPv4 address"}]
failures:
  description: Every failed check, one line each, prefixed with the device, port and netdev.
  returned: always
  type: list
  elements: str
  sample: ["rocep1s0f1 port 1 (enp1s0f1np1): netdev MTU 1500 below min_mtu 9000"]
nccl_env:
  description:
    - NCCL settings for the healthy devices of this node; empty when none is healthy.
    - C(NCCL_IB_HCA) and C(NCCL_SOCKET_IFNAME) use NCCL's exact-match form (leading C(=)).
    - C(NCCL_IB_GID_INDEX) is set only when all healthy devices use the same RoCE v2 GID index; otherwise
      C(NCCL_IB_ROCE_VERSION_NUM=2) and C(NCCL_IB_ADDR_FAMILY=AF_INET) let NCCL choose per device, and a
      warning says so. The index is per node and can drift, so never copy one node's value to the other; give each
      node's C(nccl_env) to that node's ranks only (O(dgx_spark.cluster.nccl_test#module:host_env)).
  returned: always
  type: dict
  sample: {"NCCL_IB_HCA": "=rocep1s0f1,roceP2p1s0f1", "NCCL_IB_GID_INDEX": "3",
           "NCCL_SOCKET_IFNAME": "=enp1s0f1np1,enP2p1s0f1np1"}
bandwidth:
  description: The bandwidth test.
  returned: always
  type: dict
  contains:
    ran:
      description: Whether any ib_write_bw ran.
      type: bool
    skipped:
      description: Whether the test was skipped as a whole.
      type: bool
    msg:
      description: Why it was skipped, or a summary.
      type: str
      sample: bandwidth test skipped in check mode
    role:
      description: O(bandwidth_role).
      type: str
    peer:
      description: O(peer).
      type: str
    mode:
      description: Always C(sequential) (one device after the other).
      type: str
    min_gbps:
      description: O(min_bandwidth_gbps).
      type: float
    devices:
      description:
        - Per device C(name), C(port), C(tcp_port), C(gid_index), C(rc), C(avg_gbps), C(peak_gbps) (client
          only), C(ok), C(msg), C(cmd) and C(attempts).
      type: list
      elements: dict
    total_gbps:
      description: Sum of the per-device averages (measured one after the other), or null.
      type: float
      sample: 189.85
    ok:
      description: Whether every device's run passed; null when skipped.
      type: bool
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils import roce

TOOL_TIMEOUT = 30


def argument_spec():
    return dict(
        devices=dict(type="list", elements="str", default=[]),
        fabric_subnets=dict(type="list", elements="str", default=[]),
        sysfs_root=dict(type="path", default="/sys"),
        min_speed_mbps=dict(type="int", default=roce.DEFAULT_MIN_SPEED_MBPS),
        min_mtu=dict(type="int", default=roce.DEFAULT_MIN_MTU),
        min_active_mtu=dict(type="int", default=roce.DEFAULT_MIN_ACTIVE_MTU),
        fail_on_error=dict(type="bool", default=True),
        bandwidth_test=dict(type="bool", default=False),
        bandwidth_role=dict(type="str", choices=["server", "client"]),
        peer=dict(type="str"),
        min_bandwidth_gbps=dict(type="float", default=roce.DEFAULT_MIN_BANDWIDTH_GBPS),
        bandwidth_duration=dict(type="int", default=5),
        bandwidth_timeout=dict(type="int", default=60),
        bandwidth_port=dict(type="int", default=18515),
    )


def gather(module, runner):
    """Read sysfs and run the read-only tools; every problem becomes one precise message."""
    params = module.params
    ports = roce.read_rdma_ports(params["sysfs_root"])
    ip_bin = runner.binary("ip", required=False)
    if not ip_bin:
        raise roce.RoceError("'ip' (iproute2) not found on the target: it is needed to read the netdevs' IPv4 addresses")
    out = runner.run([ip_bin, "-j", "addr", "show"], timeout=TOOL_TIMEOUT, msg="'ip -j addr show' failed")[1]
    addresses = roce.parse_ip_addr_json(out)

    ibv, ibv_error = None, None
    ibv_bin = runner.binary("ibv_devinfo", required=False)
    if not ibv_bin:
        ibv_error = "ibv_devinfo not found on the target (install ibverbs-utils)"
    else:
        rc, out, err = runner.run([ibv_bin], check=False, timeout=TOOL_TIMEOUT)
        if rc == 0:
            ibv = roce.parse_ibv_devinfo(out)
        else:
            ibv_error = "ibv_devinfo failed (rc %s): %s" % (rc, (err or out or "no output").strip())

    rdma_links = {}
    rdma_bin = runner.binary("rdma", required=False)
    if rdma_bin:
        rc, out = runner.run([rdma_bin, "link", "show"], check=False, timeout=TOOL_TIMEOUT)[:2]
        rdma_links = roce.parse_rdma_link(out) if rc == 0 else {}

    netdevs = {}
    for port in ports:
        name = roce.port_netdev(port, rdma_links)[0]
        if name and name not in netdevs:
            netdevs[name] = roce.read_netdev(params["sysfs_root"], name)
    return dict(ports=ports, netdevs=netdevs, addresses=addresses, rdma_links=rdma_links, ibv=ibv, ibv_error=ibv_error)


def bandwidth(module, runner, result):
    """Run the optional ib_write_bw test and fold its verdict into the result."""
    params = module.params
    report = dict(ran=False, skipped=True, msg=None, role=params["bandwidth_role"], peer=params["peer"],
                  mode="sequential", min_gbps=params["min_bandwidth_gbps"], devices=[], total_gbps=None, ok=None)
    if not params["bandwidth_test"]:
        report["msg"] = "bandwidth_test is false"
        return report
    if module.check_mode:
        report["msg"] = "bandwidth test skipped in check mode"
        return report
    if not result["devices"]:
        report["msg"] = "no device to test"
        return report
    binary = runner.binary("ib_write_bw", required=False)
    if not binary:
        result["failures"].append("bandwidth test: ib_write_bw not found on the target (install perftest)")
        report["msg"] = "ib_write_bw not found"
        report["ok"] = False
        return report
    plan = roce.bandwidth_plan(result["devices"], params["bandwidth_port"])
    outcome = roce.run_bandwidth(
        plan, params["bandwidth_role"], binary,
        run=lambda argv, limit: runner.run(argv, check=False, timeout=limit),
        clock=time.time, sleep=time.sleep, duration=params["bandwidth_duration"],
        timeout=params["bandwidth_timeout"], peer=params["peer"], min_gbps=params["min_bandwidth_gbps"])
    report.update(ran=True, skipped=False, devices=outcome["devices"], total_gbps=outcome["total_gbps"],
                  ok=outcome["ok"], msg="%s: %s" % (params["bandwidth_role"], "passed" if outcome["ok"] else "failed"))
    by_name = dict(((d["name"], d["port"]), d) for d in result["devices"])
    for entry in outcome["devices"]:
        device = by_name[(entry["name"], entry["port"])]
        expected = ">= %s Gb/s" % params["min_bandwidth_gbps"] if params["bandwidth_role"] == "client" else "server run completes"
        device["checks"]["bandwidth"] = dict(ok=entry["ok"], value=entry["avg_gbps"], expected=expected)
        device["ok"] = device["ok"] and entry["ok"]
    result["failures"].extend(outcome["failures"])
    result["nccl_env"], result["warnings"] = roce.nccl_env(result["devices"])
    return report


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("bandwidth_test", True, ("bandwidth_role",)), ("bandwidth_role", "client", ("peer",))],
    )
    runner = CommandRunner(module, default_timeout=TOOL_TIMEOUT)
    p = module.params
    try:
        state = gather(module, runner)
        result = roce.check_ports(devices=p["devices"], fabric_subnets=p["fabric_subnets"], min_speed_mbps=p["min_speed_mbps"],
                                  min_mtu=p["min_mtu"], min_active_mtu=p["min_active_mtu"], **state)
    except roce.RoceError as exc:
        module.fail_json(msg=str(exc), changed=False, devices=[], failures=[str(exc)], nccl_env={})
    result["bandwidth"] = bandwidth(module, runner, result)
    for warning in result.pop("warnings"):
        module.warn(warning)
    if result["failures"]:
        message = roce.failure_message(result["failures"], result["devices"])
        if p["fail_on_error"]:
            module.fail_json(msg=message, changed=False, **result)
        module.warn(message)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
