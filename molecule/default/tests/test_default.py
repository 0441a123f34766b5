"""Verify the lab nodes after start-cluster.yml, through `podman exec` (testinfra's podman backend)."""

import pytest

testinfra_hosts = ["podman://spark-2959", "podman://spark-ba63"]


def test_node_is_up_with_sshd(host):
    assert host.service("ssh").is_running


@pytest.mark.parametrize("user", ["spark"])
def test_lab_user_has_passwordless_sudo(host, user):
    assert host.run("sudo -n -u %s sudo -n true" % user).rc == 0
