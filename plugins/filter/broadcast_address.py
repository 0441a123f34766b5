# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: broadcast_address
short_description: The IPv4 broadcast address of a network
version_added: 0.3.0
author: dgx_spark.cluster contributors
description:
  - The broadcast address of an IPv4 network in CIDR form (host bits allowed), where Wake-on-LAN magic packets are
    sent. Fails naming the value when it is not an IPv4 network.
options:
  _input:
    description: The network, for example C(192.168.86.0/24).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Where the magic packets go
  ansible.builtin.debug:
    msg: "{{ '192.168.86.0/24' | dgx_spark.cluster.broadcast_address }}"  # 192.168.86.255
"""

RETURN = r"""
_value:
  description: The broadcast address.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils.power import PowerInputError, broadcast_address


def _broadcast_address(subnet):
    try:
        return broadcast_address(subnet)
    except PowerInputError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"broadcast_address": _broadcast_address}
