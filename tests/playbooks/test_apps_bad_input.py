"""playbooks/apps.yml and start-cluster.yml refuse the apps' bad input in their preflight play, before anything
changes (the real playbooks on local copies of the inventory, as test_preflight_bad_inventory.py runs them)."""

import os

import pytest

from test_preflight_bad_inventory import REPO, assert_refused_by_preflight, make_inventory, run_playbook

APPS = os.path.join(REPO, "playbooks", "apps.yml")


@pytest.mark.parametrize("extra, message", [
    (["-e", "apps=ollama,olama"], "apps: unknown app 'olama'"),
    (["-e", "apps=comfyui", "-e", "app_state=absent", "-e", "apps_purge=true"],
     "apps_purge: comfyui is removed with purge, which deletes its claim and data, but apps_purge_confirm does not "
     "name it"),
    (["-e", '{"apps_overrides": {"ollama": {"address": "192.168.86.99"}}}'],
     "apps_catalogue.ollama.address: 192.168.86.99 is outside the MetalLB pool"),
    (["-e", '{"apps_overrides": {"ollama": {"image": "ollama/ollama:latest"}}}'],
     "apps_catalogue.ollama.image: 'ollama/ollama:latest' is tagged latest"),
], ids=["unknown app", "purge not confirmed", "address outside the pool", "latest tag"])
def test_apps_playbook_refuses_bad_input_in_preflight(tmp_path, extra, message):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight", *extra, playbook=APPS)
    assert_refused_by_preflight(result, message)


def test_apps_playbook_preflight_passes_the_shipped_catalogue(tmp_path):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight",
                          "-e", "apps=ollama,openwebui", "-e", "app_state=stopped", playbook=APPS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_start_cluster_checks_the_catalogue_only_once_apps_are_enabled(tmp_path):
    bad = ["-e", '{"apps_overrides": {"ollama": {"image": "ollama/ollama:latest"}}}']
    inventory = make_inventory(tmp_path, lambda files: None)
    assert run_playbook(inventory, "--tags", "preflight", *bad).returncode == 0
    result = run_playbook(inventory, "--tags", "preflight", "-e", "apps_enabled=true", *bad)
    assert_refused_by_preflight(result, "apps_catalogue.ollama.image: 'ollama/ollama:latest' is tagged latest")
