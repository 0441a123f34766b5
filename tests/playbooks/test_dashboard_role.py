"""The dashboard role on local copies of the real inventory (nothing here can reach a cluster):

* bad input stops the role at its first task, naming the variable, before any task that reads or changes anything;
* the role's defaults and vars render, with the real inventory, into the plan its tasks act on (the variables a
  run passes, such as ``-e dashboard_run_state=stopped`` or ``-e dashboard_admin_token=true``, included).
"""

import json
import os
import subprocess
import sys

import pytest

from test_preflight_bad_inventory import ANSIBLE_PLAYBOOK, REPO, make_inventory

ROLE = os.path.join(REPO, "roles", "dashboard")


def run(tmp_path, playbook, *extra):
    path = tmp_path / "playbook.yml"
    path.write_text(playbook)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               DGX_SPARK_RESULTS_DIR=str(tmp_path / "results"))
    inventory = tmp_path / "inventory"
    if not inventory.exists():
        make_inventory(tmp_path, lambda files: None)
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory / "hosts.yml"), str(path),
                           "-e", "ansible_python_interpreter=" + sys.executable, "-e", "ansible_become=false"]
                          + list(extra), cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


ROLE_PLAY = """
- name: Dashboard role
  hosts: control_plane
  gather_facts: false
  roles:
    - role: dgx_spark.cluster.dashboard
"""


@pytest.mark.parametrize("extra, message", [
    (["-e", "dashboard_chart_version=latest"], "dashboard_chart_version is 'latest', which is not a version"),
    (["-e", "dashboard_address=192.168.86.99"], "dashboard_address: 192.168.86.99 is outside the MetalLB pool"),
    (["-e", "dashboard_address=192.168.86.200"], "dashboard_address: 192.168.86.200 is already the address of the "
                                                 "app openwebui"),
    (["-e", "dashboard_viewer_token_file=viewer.token"], "dashboard_viewer_token_file: 'viewer.token' is not an "
                                                         "absolute path"),
    (["-e", "dashboard_admin_token_file=admin.token"], "dashboard_admin_token_file: 'admin.token' is not an absolute "
                                                       "path"),
], ids=["latest", "outside the pool", "an app's address", "relative viewer file", "relative admin file"])
def test_bad_input_stops_the_role_at_its_first_task(tmp_path, extra, message):
    result = run(tmp_path, ROLE_PLAY, *extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output and "nothing was changed" in output, output
    assert "Release, rollout" not in output and "changed=0" in output, output
    assert not (tmp_path / "results").exists()


def test_an_unknown_state_is_refused_by_the_argument_spec(tmp_path):
    result = run(tmp_path, ROLE_PLAY, "-e", "dashboard_run_state=running")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "dashboard_run_state" in output and "running" in output, output
    assert "Its variables are sound" not in output, output


# The role's own defaults and vars, with the real inventory's group_vars, rendered as the role's tasks see them.
RENDER_PLAY = """
- name: Render the dashboard role's variables
  hosts: control_plane
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: The rendered plan
      ansible.builtin.debug:
        msg: "RENDERED {{{{ {{'problems': _dashboard_problems, 'plan': _dashboard_plan, 'release': _dashboard_release}}
              | to_json }}}} END"
""".format(role=ROLE)


def rendered(tmp_path, *extra):
    result = run(tmp_path, RENDER_PLAY, *extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return json.loads(output.split("RENDERED ", 1)[1].split(" END", 1)[0])


def test_the_shipped_inventory_renders_a_read_only_dashboard_on_its_address(tmp_path):
    found = rendered(tmp_path)
    assert found["problems"] == []
    plan = found["plan"]
    assert plan["state"] == "started" and plan["url"] == "https://192.168.86.205/"
    assert plan["tokens"] == [{"who": "viewer", "secret": "dashboard-viewer-token",
                               "file": str(tmp_path / "results" / "dashboard-viewer.token")}]
    assert plan["remove_files"] == [str(tmp_path / "results" / "dashboard-admin.token")]
    assert found["release"] == {
        "name": "kubernetes-dashboard", "namespace": "kubernetes-dashboard", "chart": "kubernetes-dashboard",
        "chart_ref": "kubernetes-dashboard", "chart_repo_url": "https://kubernetes.github.io/dashboard/",
        "version": "7.14.0",
        "values": {"kong": {"proxy": {"type": "LoadBalancer",
                                      "annotations": {"metallb.io/loadBalancerIPs": "192.168.86.205"}}}}}


def test_the_run_state_and_the_admin_opt_in_from_extra_vars(tmp_path):
    found = rendered(tmp_path, "-e", "dashboard_run_state=stopped", "-e", "dashboard_admin_token=true")
    plan = found["plan"]
    assert plan["state"] == "stopped" and plan["admin"] is True and plan["remove_files"] == []
    assert found["release"]["values"]["kong"]["replicaCount"] == 0
    assert [token["who"] for token in plan["tokens"]] == ["viewer", "admin"]
    absent = rendered(tmp_path, "-e", "dashboard_run_state=absent")["plan"]
    assert absent["release_values"] is None and len(absent["remove"]) == 6
