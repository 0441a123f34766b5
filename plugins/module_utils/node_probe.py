# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure drift detection for node preparation: observed facts in, one list of reasons per concern out.

The node_prep role asks once (one module call) and then runs only the fix tasks of the concerns that
drifted, so a node that is already prepared costs one task, not twenty.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def active_swaps(proc_swaps):
    """Device names from /proc/swaps (first line is a header)."""
    lines = [line.split() for line in (proc_swaps or "").splitlines()[1:]]
    return [fields[0] for fields in lines if fields]


def fstab_swap_entries(fstab):
    """Uncommented fstab lines whose type is swap."""
    entries = []
    for line in (fstab or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[2] == "swap":
            entries.append(line.strip())
    return entries


def swap_drift(proc_swaps, fstab):
    reasons = []
    swaps = active_swaps(proc_swaps)
    if swaps:
        reasons.append("swap is on (%s); kubelet refuses to run with swap" % ", ".join(swaps))
    entries = fstab_swap_entries(fstab)
    if entries:
        reasons.append("/etc/fstab turns swap on at boot (%d entr%s)" % (len(entries), "y" if len(entries) == 1 else "ies"))
    return reasons


def modules_load_content(modules):
    return "".join("%s\n" % name for name in modules)


def module_drift(wanted, available, persisted_content):
    """wanted: module names; available: names the kernel has (loaded or built in)."""
    reasons = []
    missing = [name for name in wanted if name not in available]
    if missing:
        reasons.append("kernel module%s not loaded: %s" % ("s" if len(missing) > 1 else "", ", ".join(missing)))
    # With no module wanted, a missing file is the desired state too.
    if persisted_content != modules_load_content(wanted) and (wanted or persisted_content):
        reasons.append("modules are not persisted for boot")
    return reasons


def sysctl_drift(wanted, current):
    """wanted/current: name -> value (strings). A missing key counts as drift."""
    reasons = []
    for name in sorted(wanted):
        have = current.get(name)
        if have is None or str(have).split() != str(wanted[name]).split():
            reasons.append("sysctl %s is %s, wants %s" % (name, "unset" if have is None else have, wanted[name]))
    return reasons


def file_drift(label, current, wanted):
    if current is None:
        return ["%s is missing" % label]
    if current != wanted:
        return ["%s differs from the managed content" % label]
    return []


def parse_dpkg_query(text):
    """Lines of 'name<TAB>version<TAB>want ok status' -> name -> (version, selection, installed)."""
    packages = {}
    for line in (text or "").splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        status = fields[2].split()
        selection = status[0] if status else ""
        installed = len(status) >= 3 and status[2] == "installed"
        packages[fields[0]] = (fields[1], selection, installed)
    return packages


def version_matches(version, wanted_prefix):
    """'1.31' matches '1.31.4-1.1' but not '1.310.0'; an exact version must match fully (before the revision)."""
    upstream = version.split(":", 1)[-1].split("-", 1)[0]
    return upstream == wanted_prefix or upstream.startswith(wanted_prefix + ".")


def package_drift(wanted, version_prefix, hold, installed):
    reasons = []
    for name in wanted:
        version, selection, is_installed = installed.get(name, ("", "", False))
        if not is_installed:
            reasons.append("package %s is not installed" % name)
            continue
        if version_prefix and not version_matches(version, version_prefix):
            reasons.append("package %s is %s, wants %s.x" % (name, version, version_prefix))
        if hold and selection != "hold":
            reasons.append("package %s is not held (apt could upgrade it)" % name)
    return reasons


def service_drift(states):
    """states: name -> (active, enabled) strings from systemctl."""
    reasons = []
    for name in sorted(states):
        active, enabled = states[name]
        if active != "active":
            reasons.append("%s is %s" % (name, active or "unknown"))
        if enabled != "enabled":
            reasons.append("%s is not enabled at boot (%s)" % (name, enabled or "unknown"))
    return reasons


def parse_sysctl_file(text):
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        name, value = line.split("=", 1)
        values[name.strip()] = value.strip()
    return values


def probe(facts, wanted):
    """facts: what the module read; wanted: the desired state. Returns concern -> [reasons] (drifted only).

    A concern whose desired state is not given (no containerd content) is not compared."""
    sysctls = wanted.get("sysctls", {})
    persisted = parse_sysctl_file(facts.get("sysctl_file"))
    drift = {
        "swap": swap_drift(facts.get("proc_swaps"), facts.get("fstab")) if wanted.get("swap_off") else [],
        "modules": module_drift(wanted.get("kernel_modules", []), facts.get("modules_available", set()),
                                facts.get("modules_load")),
        "sysctl": sysctl_drift(sysctls, facts.get("sysctl_runtime", {}))
        + ["sysctl %s is not persisted" % name for name in sorted(sysctls) if persisted.get(name) != str(sysctls[name])],
        "containerd": file_drift("containerd config %s" % wanted.get("containerd_config_path"),
                                 facts.get("containerd_config"), wanted["containerd_config"])
        if wanted.get("containerd_config") is not None else [],
        "packages": package_drift(wanted.get("packages", []), wanted.get("package_version"), wanted.get("hold"),
                                  facts.get("packages", {})),
        "services": service_drift(facts.get("services", {})),
    }
    return dict((concern, reasons) for concern, reasons in drift.items() if reasons)
