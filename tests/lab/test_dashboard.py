"""playbooks/apps.yml -e apps=dashboard on the lab (issue 13): the dashboard role with the LAB CHART of
lab/charts/kubernetes-dashboard (the real chart's name, release, namespace and Deployment names; Kong's gateway is the
LAB STAND-IN answering plain HTTP, the other Deployments sleep). Real here: the release handling, the MetalLB address
answering from the controller, and the login accounts: their RBAC is the real API server's, so the viewer token is
proven unable to read Secrets and the admin token able to, and revoked when the opt-in goes off. Not proven here (only
real Sparks): the Dashboard's own UI and its Kong gateway. Cleans up after itself; runs after test_repairs.py.
"""

import os
import ssl
import stat
import urllib.error
import urllib.request

import pytest

from conftest import API_URL, REPO, flat, playbook, record_time, wait_for

NAMESPACE = "kubernetes-dashboard"
URL = "http://192.168.86.205:443/"
TOKENS = os.path.join(REPO, ".lab", "dashboard")
VIEWER = os.path.join(TOKENS, "dashboard-viewer.token")
ADMIN = os.path.join(TOKENS, "dashboard-admin.token")


def dashboard_run(*extra):
    return playbook("apps.yml", "-e", "apps=dashboard", *extra)


def api_status(token, path):
    """The HTTP status the lab's API server gives ``token`` for GET ``path`` (the lab CA is not the machine's: no
    verification, the address is the lab's own)."""
    request = urllib.request.Request(API_URL + path, headers={"Authorization": "Bearer " + token})
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, dict(reply.headers)
    except OSError:
        return None


def private_file(path):
    mode = stat.S_IMODE(os.stat(path).st_mode)
    with open(path) as handle:
        return mode, handle.read().strip()


@pytest.fixture(scope="module")
def dashboard(lab_ready):
    yield
    dashboard_run("-e", "app_state=absent")


def test_started_read_only_its_address_answers_and_the_viewer_cannot_read_secrets(dashboard):
    run = dashboard_run("-e", "app_state=started")
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: the Dashboard started (LAB CHART)", run.seconds)
    reply = wait_for(lambda: answers(URL), timeout=60, what="the Dashboard's address")
    assert reply[0] == 200 and reply[1].get("X-Lab-Standin") == "kubernetes-dashboard"
    mode, token = private_file(VIEWER)
    assert mode == 0o600 and stat.S_IMODE(os.stat(TOKENS).st_mode) == 0o700
    assert token and token not in run.output
    assert "read-only login token" in flat(run.output) and not os.path.exists(ADMIN)
    # The viewer token logs in (the API knows it) and reads workloads, but no Secret.
    assert api_status(token, "/api/v1/namespaces/kube-system/pods") == 200
    assert api_status(token, "/api/v1/namespaces/kube-system/secrets") == 403
    again = dashboard_run("-e", "app_state=started")
    assert again.rc == 0 and again.changed == 0, again


def test_the_admin_token_only_on_opt_in_and_revoked_when_it_goes_off(dashboard):
    run = dashboard_run("-e", "app_state=started", "-e", "dashboard_admin_token=true")
    assert run.rc == 0 and run.changed > 0, run
    mode, token = private_file(ADMIN)
    assert mode == 0o600 and token not in run.output
    assert api_status(token, "/api/v1/namespaces/kube-system/secrets") == 200
    run = dashboard_run("-e", "app_state=started")
    assert run.rc == 0 and run.changed > 0, run
    assert not os.path.exists(ADMIN)
    assert wait_for(lambda: api_status(token, "/api/v1/namespaces/kube-system/pods") == 401, timeout=30,
                    what="the admin token revoked")


def test_check_mode_changes_nothing_then_absent_removes_release_and_accounts(dashboard):
    _mode, token = private_file(VIEWER)
    check = dashboard_run("-e", "app_state=absent", "--check")
    assert check.rc == 0 and os.path.exists(VIEWER), check
    assert answers(URL), "a check run removed the Dashboard"
    assert api_status(token, "/api/v1/namespaces/kube-system/pods") == 200
    run = dashboard_run("-e", "app_state=absent")
    assert run.rc == 0 and run.changed > 0, run
    record_time("apps: the Dashboard removed", run.seconds)
    assert not os.path.exists(VIEWER)
    assert wait_for(lambda: answers(URL) is None, timeout=60, what="the Dashboard's address gone")
    assert wait_for(lambda: api_status(token, "/api/v1/namespaces/kube-system/pods") == 401, timeout=30,
                    what="the viewer token revoked")
