"""node_probe's pure drift detection (inputs are the texts the module reads on a node)."""

from ansible_collections.dgx_spark.cluster.plugins.module_utils import node_probe as core

PROC_SWAPS_ON = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t8388604\t\t0\t\t-2\n"
PROC_SWAPS_OFF = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
FSTAB = """# /etc/fstab: static file system information.
UUID=1234 / ext4 errors=remount-ro 0 1
/swap.img\tnone\tswap\tsw\t0\t0
#/old.swap none swap sw 0 0
"""
DPKG = ("kubeadm\t1.31.4-1.1\thold ok installed\n"
        "kubelet\t1.31.4-1.1\tinstall ok installed\n"
        "kubectl\t1.30.2-1.1\thold ok installed\n")


def test_swap_on_and_in_fstab_are_two_reasons():
    assert core.swap_drift(PROC_SWAPS_ON, FSTAB) == [
        "swap is on (/swap.img); kubelet refuses to run with swap",
        "/etc/fstab turns swap on at boot (1 entry)",
    ]


def test_commented_swap_and_no_active_swap_is_no_drift():
    assert core.swap_drift(PROC_SWAPS_OFF, "#/swap.img none swap sw 0 0\n") == []


def test_modules_missing_and_not_persisted():
    assert core.module_drift(["overlay", "br_netfilter"], {"overlay"}, None) == [
        "kernel module not loaded: br_netfilter",
        "modules are not persisted for boot",
    ]
    assert core.module_drift(["overlay", "br_netfilter"], {"overlay", "br_netfilter"}, "overlay\nbr_netfilter\n") == []


def test_sysctl_runtime_and_persisted_values():
    wanted = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
    assert core.sysctl_drift(wanted, {"net.ipv4.ip_forward": "0"}) == [
        "sysctl net.bridge.bridge-nf-call-iptables is unset, wants 1",
        "sysctl net.ipv4.ip_forward is 0, wants 1",
    ]
    assert core.parse_sysctl_file("# c\nnet.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables=1\n") == wanted


def test_packages_version_series_and_hold():
    installed = core.parse_dpkg_query(DPKG)
    assert installed["kubelet"] == ("1.31.4-1.1", "install", True)
    assert core.package_drift(["kubeadm", "kubelet", "kubectl", "cri-tools"], "1.31", True, installed) == [
        "package kubelet is not held (apt could upgrade it)",
        "package kubectl is 1.30.2-1.1, wants 1.31.x",
        "package cri-tools is not installed",
    ]


def test_version_series_matching_is_not_a_plain_prefix():
    assert core.version_matches("1.31.4-1.1", "1.31")
    assert core.version_matches("1:1.31.0-00", "1.31")
    assert not core.version_matches("1.310.0-1", "1.31")
    assert core.version_matches("1.31.4-1.1", "1.31.4")


def test_services():
    assert core.service_drift({"containerd": ("active", "enabled")}) == []
    assert core.service_drift({"containerd": ("inactive", "disabled")}) == [
        "containerd is inactive", "containerd is not enabled at boot (disabled)"]


def test_probe_reports_only_drifted_concerns():
    facts = {
        "proc_swaps": PROC_SWAPS_OFF, "fstab": "", "modules_available": {"overlay", "br_netfilter"},
        "modules_load": "overlay\nbr_netfilter\n", "sysctl_runtime": {"net.ipv4.ip_forward": "1"},
        "sysctl_file": "net.ipv4.ip_forward = 1\n", "containerd_config": "old\n",
        "packages": core.parse_dpkg_query("kubeadm\t1.31.4-1.1\thold ok installed\n"),
        "services": {"containerd": ("active", "enabled")},
    }
    wanted = {"swap_off": True, "kernel_modules": ["overlay", "br_netfilter"], "sysctls": {"net.ipv4.ip_forward": "1"},
              "containerd_config_path": "/etc/containerd/config.toml", "containerd_config": "new\n",
              "packages": ["kubeadm"], "package_version": "1.31", "hold": True}
    assert core.probe(facts, wanted) == {
        "containerd": ["containerd config /etc/containerd/config.toml differs from the managed content"]}
    facts["containerd_config"] = "new\n"
    assert core.probe(facts, wanted) == {}


def test_containerd_not_compared_without_desired_content():
    facts = {"proc_swaps": PROC_SWAPS_OFF, "fstab": "", "containerd_config": None, "modules_load": "",
             "services": {"containerd": ("active", "enabled")}}
    assert core.probe(facts, {"swap_off": True, "containerd_config": None}) == {}
    assert core.probe(facts, {"swap_off": True, "containerd_config": "x\n", "containerd_config_path": "/c"}) == {
        "containerd": ["containerd config /c is missing"]}
