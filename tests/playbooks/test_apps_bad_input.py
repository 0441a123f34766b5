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
    (["-e", '{"apps_overrides": {"ollama": {"models": ["gpt-oss:20b", "llama 3"]}}}'],
     "apps_catalogue.ollama.models[1]: 'llama 3' is not an Ollama model name"),
    (["-e", '{"apps_overrides": {"comfyui": {"image_archive": "images/comfyui.tar"}}}'],
     "apps_catalogue.comfyui.image_archive: 'images/comfyui.tar' is not an absolute path on the controller"),
    (["-e", '{"apps_overrides": {"ollama": {"cache_job": {"args": ["x"]}}}}'],
     "apps_catalogue.ollama.cache_job.command: the command the Job runs, a list of strings"),
    (["-e", "apps=dashboard", "-e", "dashboard_enabled=false"], "apps: unknown app 'dashboard'"),
    (["-e", "dashboard_chart_version=latest"], "dashboard_chart_version"),
    (["-e", "dashboard_address=10.0.0.5"], "dashboard_address"),
], ids=["unknown app", "purge not confirmed", "address outside the pool", "latest tag", "bad model name",
        "relative image archive", "cache job without a command", "dashboard not enabled", "dashboard chart not pinned",
        "dashboard address outside the pool"])
def test_apps_playbook_refuses_bad_input_in_preflight(tmp_path, extra, message):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight", *extra, playbook=APPS)
    assert_refused_by_preflight(result, message)


def test_apps_playbook_preflight_passes_the_shipped_catalogue(tmp_path):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight",
                          "-e", "apps=ollama,openwebui", "-e", "app_state=stopped", playbook=APPS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_apps_playbook_preflight_takes_the_dashboard_as_an_app(tmp_path):
    result = run_playbook(make_inventory(tmp_path, lambda files: None), "--tags", "preflight",
                          "-e", "apps=dashboard,ollama", "-e", "app_state=stopped", playbook=APPS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_start_cluster_checks_the_catalogue_only_once_apps_are_enabled(tmp_path):
    bad = ["-e", '{"apps_overrides": {"ollama": {"image": "ollama/ollama:latest"}}}']
    inventory = make_inventory(tmp_path, lambda files: None)
    assert run_playbook(inventory, "--tags", "preflight", *bad).returncode == 0
    result = run_playbook(inventory, "--tags", "preflight", "-e", "apps_enabled=true", *bad)
    assert_refused_by_preflight(result, "apps_catalogue.ollama.image: 'ollama/ollama:latest' is tagged latest")
