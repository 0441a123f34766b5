"""The playbooks refuse a bad inventory in their preflight play, before any play changes anything.

Each case copies the real inventory layout (hosts.yml, group_vars, host_vars) into a temporary
directory, makes one mistake in it, and runs the real playbook. The copies connect with
``ansible_connection: local`` so that nothing here can reach a network address, even if a check
were missing: a missing check shows up as a run that succeeds.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(REPO, "playbooks", "start-cluster.yml")
VALIDATE_FABRIC = os.path.join(REPO, "playbooks", "validate-fabric.yml")
FABRIC = os.path.join(REPO, "playbooks", "fabric.yml")
STOP_CLUSTER = os.path.join(REPO, "playbooks", "stop-cluster.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def make_inventory(tmp_path, mutate):
    inv = tmp_path / "inventory"
    shutil.copytree(os.path.join(REPO, "inventory"), inv, symlinks=True,
                    ignore=shutil.ignore_patterns("lab"))
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    for group in hosts["spark_cluster"]["children"].values():
        for host in (group.get("hosts") or {}).values():
            host["ansible_connection"] = "local"
    files = {"hosts": hosts}
    for name in ("spark-2959", "spark-ba63"):
        files[name] = yaml.safe_load((inv / "host_vars" / ("%s.yml" % name)).read_text())
    for name in ("network", "fabric", "kubernetes", "metallb"):
        files[name] = yaml.safe_load((inv / "group_vars" / "all" / ("%s.yml" % name)).read_text())
    # preflight_check_access=false leaves preflight unable to tell whether a cluster exists, so it would refuse
    # the shipped pod CIDR (it overlaps the LAN) as for a new cluster; the cases accept it unless they test it.
    files["kubernetes"]["kubernetes_pod_cidr_overlap_accepted"] = True
    mutate(files)
    (inv / "hosts.yml").write_text(yaml.safe_dump(files["hosts"]))
    for name in ("spark-2959", "spark-ba63"):
        (inv / "host_vars" / ("%s.yml" % name)).write_text(yaml.safe_dump(files[name]))
    for name in ("network", "fabric", "kubernetes", "metallb"):
        (inv / "group_vars" / "all" / ("%s.yml" % name)).write_text(yaml.safe_dump(files[name]))
    return inv


def run_playbook(inventory, *extra, **kwargs):
    """Run a playbook on the local copies. A sound inventory gets past preflight to the cluster lock, which then
    lives in the test's own directory (no sudo, this Python) and must be released by the run's last play."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    lock = str(inventory.parent / "cluster.lock")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory / "hosts.yml"), kwargs.get("playbook", PLAYBOOK),
                             "-e", "preflight_check_access=false", "-e", "ansible_python_interpreter=" + sys.executable,
                             "-e", "ansible_become=false", "-e", "cluster_lock_path=" + lock] + list(extra),
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert not os.path.exists(lock), "the run left its cluster lock behind:\n" + result.stdout
    return result


def move_worker_to_control_plane(files):
    children = files["hosts"]["spark_cluster"]["children"]
    children["control_plane"]["hosts"].update(children["workers"]["hosts"])
    children["workers"]["hosts"] = {}


CASES = [
    ("duplicate fabric address",
     lambda f: f["spark-ba63"].__setitem__("spark_fabric_addresses", ["10.10.10.1/24", "10.10.11.2/24"]),
     "10.10.10.1 is used twice"),
    ("LAN address outside the LAN",
     lambda f: f["spark-ba63"].__setitem__("spark_lan_ip", "10.0.0.39"),
     "spark_lan_ip 10.0.0.39 is outside spark_lan_subnet 192.168.86.0/24"),
    ("two control planes", move_worker_to_control_plane,
     "group control_plane must hold exactly one node; it holds 2"),
    ("fabric overlapping the LAN",
     lambda f: f["fabric"]["fabric_ports"][1].__setitem__("subnet", "192.168.86.128/25"),
     "overlaps fabric_ports[1].subnet (192.168.86.128/25)"),
    ("wrong type caught by the role's argument spec",
     lambda f: f["fabric"].__setitem__("fabric_mtu", "jumbo"),
     "argument 'fabric_mtu' is of type str and we were unable to convert to int"),
    ("missing host_vars value caught by the role's argument spec",
     lambda f: f["spark-ba63"].pop("spark_lan_ip"),
     "missing required arguments: spark_lan_ip"),
]


def setting(file_name, name, value):
    return lambda f: f[file_name].__setitem__(name, value)


def fabric_candidates(*names):
    return lambda f: f["fabric"]["fabric_ports"][0].__setitem__("candidates", list(names))


CASES += [
    ("worker-only MTU override in host_vars", setting("spark-ba63", "fabric_mtu", 100000),
     "spark-ba63: fabric_mtu: 100000 is outside 1280..9216 (bytes)"),
    ("worker-only MTU override disagrees with the other node", setting("spark-ba63", "fabric_mtu", 100000),
     "fabric_mtu must be the same on every node but differs: spark-2959 9000, spark-ba63 100000"),
    ("later role's timeout zero (worker play)", setting("spark-ba63", "worker_join_timeout", 0),
     "spark-ba63: worker_join_timeout: 0 is below the lowest allowed value, 1 (seconds)"),
    ("later role's timeout negative (control plane play)", setting("kubernetes", "control_plane_init_timeout", -5),
     "control_plane_init_timeout: -5 is below the lowest allowed value, 1 (seconds)"),
    ("later role's type (worker play)", setting("kubernetes", "worker_reset_timeout", "two minutes"),
     "argument 'worker_reset_timeout' is of type str and we were unable to convert to int"),
    ("later role's choices (fabric play)", setting("fabric", "fabric_persist", "ifupdown"),
     "value of fabric_persist must be one of: netplan, networkmanager, none, got: ifupdown"),
    ("join token that never expires", setting("kubernetes", "worker_token_ttl", "0s"),
     "worker_token_ttl: '0s' is zero (kubeadm reads that as never expires)"),
    ("Kubernetes version latest", setting("kubernetes", "kubernetes_version", "latest"),
     "kubernetes_version: 'latest' is not a Kubernetes version; write a series like \"1.31\" or a release like \"1.31.4\""),
    ("Kubernetes version unquoted 1.30", setting("kubernetes", "kubernetes_version", 1.30),
     "kubernetes_version: 1.3 is a number, not a version (YAML reads an unquoted 1.30 as the number 1.3); quote it"),
    ("interface name with shell metacharacters", fabric_candidates("enp1s0f1np1", "$(reboot)"),
     "fabric_ports[0].candidates[1]: '$(reboot)' is not a Linux interface name"),
    ("SSH port out of range", setting("network", "spark_ssh_port", 70000),
     "spark_ssh_port: 70000 is outside 1..65535 (a TCP port)"),
    ("new cluster (or unknown) with a pod CIDR overlapping the LAN", setting("kubernetes", "kubernetes_pod_cidr_overlap_accepted", False),
     "kubernetes_pod_cidr (192.168.0.0/16) overlaps spark_lan_subnet (192.168.86.0/24): preflight cannot tell whether a "
     "cluster exists (preflight_check_access is false), so it takes it as new"),
]


@pytest.mark.parametrize("mutate, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_inventory_is_refused_with_its_message(tmp_path, mutate, message):
    result = run_playbook(make_inventory(tmp_path, mutate), "--tags", "preflight")
    assert_refused_by_preflight(result, message)


def assert_refused_by_preflight(result, message):
    """Refused with its message by play 1: no later play started (with --tags preflight the later roles' own
    argument-spec checks, tagged always, would still run in their plays, after earlier plays changed nodes)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert output.count("PLAY [") == 1, output
    assert "changed=0" in output or "changed=" not in output


def test_sound_inventory_passes_preflight(tmp_path):
    # Only the preflight play (tagged preflight): the copies connect locally, so nothing past it may run here.
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight")
    assert result.returncode == 0, result.stdout + result.stderr


def test_numbers_given_as_extra_vars_are_accepted(tmp_path):
    # Extra vars are strings: -e fabric_mtu=9000 used to be refused ("'9000' is outside 1280..9216").
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight",
                          "-e", "fabric_mtu=9000", "-e", "kubernetes_api_port=6443", "-e", "worker_join_timeout=600")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_pod_cidr_apart_from_the_lan_needs_no_acceptance(tmp_path):
    def mutate(files):
        files["kubernetes"]["kubernetes_pod_cidr"] = "10.244.0.0/16"
        files["kubernetes"]["kubernetes_pod_cidr_overlap_accepted"] = False
    result = run_playbook(make_inventory(tmp_path, mutate), "--tags", "preflight")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variable, value, message", [
    ("nccl_max_bytes", "16G", "nccl_max_bytes: 16G (16 GiB) is above the memory-safe cap of 8 GiB"),
    ("nccl_min_avg_busbw_gbs", -1.0, "nccl_min_avg_busbw_gbs: -1.0 is below the lowest allowed value, 0 (GB/s)"),
    ("nccl_timeout", 0, "nccl_timeout: 0 is below the lowest allowed value, 1 (seconds)"),
], ids=["NCCL size above the cap", "negative NCCL bandwidth gate", "NCCL timeout zero"])
def test_validate_fabric_refuses_bad_nccl_values_in_preflight(tmp_path, variable, value, message):
    result = run_playbook(make_inventory(tmp_path, setting("fabric", variable, value)), "--tags", "preflight",
                          playbook=VALIDATE_FABRIC)
    assert_refused_by_preflight(result, message)


def test_fabric_playbook_checks_the_fabric_roles_bounds(tmp_path):
    result = run_playbook(make_inventory(tmp_path, setting("fabric", "fabric_min_speed_mbps", 0)), "--tags", "preflight",
                          playbook=FABRIC)
    assert_refused_by_preflight(result, "fabric_min_speed_mbps: 0 is below the lowest allowed value, 1 (Mb/s)")


def test_stop_cluster_checks_the_stop_roles_bounds(tmp_path):
    result = run_playbook(make_inventory(tmp_path, setting("kubernetes", "stop_drain_timeout", -1)), "--tags", "preflight",
                          playbook=STOP_CLUSTER)
    assert_refused_by_preflight(result, "stop_drain_timeout: -1 is below the lowest allowed value, 1 (seconds)")


@pytest.mark.parametrize("playbook", [PLAYBOOK, FABRIC, VALIDATE_FABRIC, STOP_CLUSTER], ids=os.path.basename)
def test_sound_inventory_passes_every_preflight(tmp_path, playbook):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight", playbook=playbook)
    assert result.returncode == 0, result.stdout + result.stderr
