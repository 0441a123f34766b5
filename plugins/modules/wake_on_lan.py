#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wake_on_lan
short_description: Wake-on-LAN (magic packet) on a network interface, enabled now and persisted
version_added: "0.3.0"
description:
  - Reads the interface's Wake-on-LAN state with C(ethtool) and enables waking on a magic packet (C(ethtool -s <if>
    wol g)) only when the NIC does not do it already (its C(Wake-on) letters lack C(g)).
  - "Persists it the way the interface's network is managed, so it survives the next boot. With O(persist=auto),
    NetworkManager when it manages the interface with an active connection (the connection's
    C(802-3-ethernet.wake-on-lan) set to C(magic) when it lacks it), else netplan when a netplan definition
    configures the interface (by id, C(set-name) or C(match)); a drop-in O(netplan_file) then adds
    C(wakeonlan: true) to that definition, written only when netplan does not already read C(wakeonlan: true) for it."
  - Reads first, then changes only what differs; each change is verified (C(ethtool) read again, C(netplan get)
    after the drop-in is written, which is removed again when netplan does not read it back).
  - Never applies the network configuration (no C(netplan apply), no connection re-activation). The runtime setting
    is made with C(ethtool), the persisted one takes effect at the next boot, and the LAN connection the run uses
    is not bounced.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  interface:
    description: The network interface that magic packets arrive on (the LAN interface).
    type: str
    required: true
  persist:
    description:
      - How the setting survives a reboot. V(auto) detects NetworkManager, then netplan, and fails naming what it found
        when neither configures the interface. V(none) enables it until the next boot only.
    type: str
    choices: [auto, netplan, networkmanager, none]
    default: auto
  netplan_file:
    description: The netplan drop-in this module owns (mode 0600).
    type: path
    default: /etc/netplan/90-dgx-spark-wol.yaml
  require_support:
    description:
      - Fail when the NIC reports no magic-packet Wake-on-LAN support (a magic packet could not wake the node). V(false)
        turns that into a warning and still persists the setting (for NICs, such as a container's veth, that cannot
        report it).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only and reports in RV(actions) what it would change.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Linux with C(ethtool); C(nmcli) or C(netplan) for persistence.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Needs root (C(ethtool -s), C(nmcli connection modify), writing under C(/etc/netplan)).
  - The firmware must also allow waking from suspend on that port; that is outside what the OS can set.
seealso:
  - module: community.general.wakeonlan
"""

EXAMPLES = r"""
- name: Wake-on-LAN on the LAN interface, now and after reboots
  dgx_spark.cluster.wake_on_lan:
    interface: enP7s7
  become: true

- name: Only until the next boot
  dgx_spark.cluster.wake_on_lan:
    interface: enP7s7
    persist: none
  become: true
"""

RETURN = r"""
interface:
  description: The interface.
  returned: always
  type: str
  sample: enP7s7
mac:
  description: Its MAC address (the one magic packets must carry).
  returned: always
  type: str
  sample: 4c:bb:47:2e:29:59
supports:
  description: The Wake-on letters the NIC supports (C(g) is magic packet); null when it reports none.
  returned: always
  type: str
  sample: pumbg
wake_on_before:
  description: The Wake-on letters before this run.
  returned: always
  type: str
  sample: d
wake_on:
  description: The Wake-on letters after this run (in check mode, what they would be).
  returned: always
  type: str
  sample: g
persist:
  description: How the setting is persisted.
  returned: always
  type: str
  sample: networkmanager
persist_via:
  description: The NetworkManager connection or the netplan drop-in that holds the setting; null with O(persist=none).
  returned: always
  type: str
  sample: Wired connection 1
actions:
  description: What was changed (in check mode, what would be).
  returned: always
  type: list
  elements: str
  sample: ["ethtool -s enP7s7 wol g (Wake-on was 'd')"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import power, power_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

ARGUMENT_SPEC = dict(
    interface=dict(type="str", required=True),
    persist=dict(type="str", choices=list(power.PERSIST_CHOICES), default="auto"),
    netplan_file=dict(type="path", default=power.NETPLAN_FILE),
    require_support=dict(type="bool", default=True),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    runner = CommandRunner(module)
    facts = power_io.gather_facts(runner, p["interface"], p["persist"], p["netplan_file"])
    try:
        planned = power.plan(facts, p["persist"], p["require_support"], p["netplan_file"])
    except power.PowerInputError as exc:
        module.fail_json(msg=str(exc), interface=p["interface"], mac=facts.get("mac"))
    for warning in planned["warnings"]:
        module.warn(warning)
    result = power.result(facts, planned)
    if module._diff:
        result["diff"] = power.diff(facts, planned)
    if module.check_mode or not planned["actions"]:
        module.exit_json(**result)
    done = power_io.execute(runner, facts, planned)
    result.update(power.result(facts, planned, done))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
