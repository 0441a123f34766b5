"""start-cluster.yml refuses a bad inventory before it connects to any node.

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
    mutate(files)
    (inv / "hosts.yml").write_text(yaml.safe_dump(files["hosts"]))
    for name in ("spark-2959", "spark-ba63"):
        (inv / "host_vars" / ("%s.yml" % name)).write_text(yaml.safe_dump(files[name]))
    for name in ("network", "fabric", "kubernetes", "metallb"):
        (inv / "group_vars" / "all" / ("%s.yml" % name)).write_text(yaml.safe_dump(files[name]))
    return inv


def run_playbook(inventory, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory / "hosts.yml"), PLAYBOOK,
                           "-e", "preflight_check_access=false"] + list(extra),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


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


@pytest.mark.parametrize("mutate, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_inventory_is_refused_with_its_message(tmp_path, mutate, message):
    result = run_playbook(make_inventory(tmp_path, mutate), "--tags", "preflight")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert "changed=0" in output or "changed=" not in output


def test_sound_inventory_passes_preflight(tmp_path):
    # Only the preflight play (tagged preflight): the copies connect locally, so nothing past it may run here.
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight")
    assert result.returncode == 0, result.stdout + result.stderr
