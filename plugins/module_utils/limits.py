# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Limits and small validators shared by preflight and the modules: one rule, in one place.

Pure: no Ansible imports, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Fabric MTU: 1280 is the smallest MTU IPv6 allows (RFC 8200), so nothing smaller can carry both families;
# 9216 is the largest jumbo frame common to data-centre switches (ConnectX-7 itself accepts up to 9978).
MTU_MIN = 1280
MTU_MAX = 9216

# Linux interface names: at most IFNAMSIZ - 1 = 15 bytes. The kernel itself refuses only '/', ':', whitespace,
# '.' and '..'; we accept a stricter, shell-safe set (the names reach argv lists, NetworkManager keyfiles and
# NCCL_SOCKET_IFNAME): letters, digits, '_', '.', '-', starting with a letter or digit (never '-', which a tool
# would read as an option).
IFNAME_MAX = 15
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
IFNAME_RULE = "1 to 15 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit"

# TCP/UDP ports.
PORT_MIN = 1
PORT_MAX = 65535


def interface_name_problem(name):
    """Why ``name`` is not an acceptable Linux interface name, or None when it is."""
    if not isinstance(name, str):
        return "%r is not a Linux interface name (a string of %s)" % (name, IFNAME_RULE)
    if IFNAME_RE.fullmatch(name):
        return None
    if IFNAME_RE.fullmatch(name[:IFNAME_MAX]) and re.fullmatch(r"[A-Za-z0-9_.-]*", name):
        return "'%s' is %d characters long; Linux interface names have at most %d" % (name, len(name), IFNAME_MAX)
    return "'%s' is not a Linux interface name (%s)" % (name, IFNAME_RULE)


def mtu_problem(mtu):
    """Why ``mtu`` (an int) is not an acceptable fabric MTU, or None when it is."""
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not MTU_MIN <= mtu <= MTU_MAX:
        return "%r is outside %d..%d" % (mtu, MTU_MIN, MTU_MAX)
    return None


# Kubernetes node names (the inventory hostnames become `kubeadm --node-name`): an RFC 1123 subdomain, lower case.
NODE_NAME_MAX = 253
NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def node_name_problem(name):
    """Why ``name`` is not a valid Kubernetes node name, or None when it is."""
    text = str(name)
    if len(text) <= NODE_NAME_MAX and NODE_NAME_RE.fullmatch(text):
        return None
    suggestion = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")[:NODE_NAME_MAX]
    return ("'%s' is not a valid Kubernetes node name (lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit, at most %d characters); rename the inventory host%s"
            % (text, NODE_NAME_MAX, (", for example to '%s'" % suggestion) if suggestion else ""))


# kubernetes_version: a minor series ("1.31": any 1.31.x) or one release ("1.31.4"); a leading "v" as Kubernetes
# writes its tags ("v1.31.4") is accepted and dropped. Anything else (latest, stable, 1.31.x, apt revisions) is refused.
KUBERNETES_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
KUBERNETES_VERSION_EXAMPLE = 'write a series like "1.31" or a release like "1.31.4", quoted'


def parse_kubernetes_version(value, name="kubernetes_version"):
    """``(normalised, None)`` for an accepted version ("1.31" or "1.31.4"), or ``(None, problem)``."""
    if isinstance(value, bool) or value is None:
        return None, "%s: %r is not a Kubernetes version; %s" % (name, value, KUBERNETES_VERSION_EXAMPLE)
    if isinstance(value, (int, float)):
        return None, ("%s: %r is a number, not a version (YAML reads an unquoted 1.30 as the number 1.3); "
                      "quote it, like %s: \"1.31\"" % (name, value, name))
    match = KUBERNETES_VERSION_RE.fullmatch(str(value).strip())
    if not match:
        return None, "%s: '%s' is not a Kubernetes version; %s" % (name, value, KUBERNETES_VERSION_EXAMPLE)
    parts = [str(int(part)) for part in match.groups() if part is not None]
    if parts[0] != "1":
        return None, "%s: '%s' is not a Kubernetes 1.x version; %s" % (name, value, KUBERNETES_VERSION_EXAMPLE)
    return ".".join(parts), None


def kubernetes_apt_version(normalised):
    """The apt version pattern of a normalised version: "1.31" -> "1.31.*", "1.31.4" -> "1.31.4-*"."""
    if normalised.count(".") == 2:
        return normalised + "-*"
    return normalised + ".*"


# Go durations as kubeadm reads them (worker_token_ttl); 0 means "never expires" to kubeadm, so it is refused.
GO_DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h))+$")


def duration_problem(value):
    """Why ``value`` is not a positive Go duration such as 15m or 1h30m, or None when it is."""
    text = str(value).strip()
    if not GO_DURATION_RE.fullmatch(text):
        return "'%s' is not a duration such as 15m or 1h30m" % (value,)
    if not re.search(r"[1-9]", text):
        return "'%s' is zero (kubeadm reads that as never expires); give a positive duration such as 15m" % (value,)
    return None
