"""The lab's podman settings are named in the repository, not left to what a machine chose before.

Podman 4.3 picks a network backend once (netavark when installed, else CNI) and remembers it in its storage.
With CNI the lab's --internal LAN bridge gets no address and the controller cannot reach the nodes, which is
how `lab/lab.sh demo` failed on a fresh machine. These tests run the real podman with the lab's files.
"""

import os
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
LAB = os.path.join(REPO, "lab", "lab.sh")

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (tests/setup.sh installs it)")


def _podman_info(fmt, env):
    return subprocess.run(["podman", "info", "--format", fmt], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_lab_files_name_netavark_and_a_storage_of_their_own():
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(REPO, "lab", "containers.conf"),
               CONTAINERS_STORAGE_CONF=os.path.join(REPO, "lab", "storage.conf"))
    assert _podman_info("{{.Host.NetworkBackend}}", env) == "netavark"
    assert _podman_info("{{.Store.GraphRoot}}", env) == "/var/lib/dgxlab/storage"
    assert _podman_info("{{.Host.OCIRuntime.Name}}", env) == "runc"


def test_lab_sh_accepts_the_lab_settings():
    result = subprocess.run([LAB, "check-podman"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "netavark network backend" in result.stdout


def test_lab_sh_refuses_another_backend_and_says_what_to_do(tmp_path):
    # A podman whose settings give CNI (what a machine without netavark gets): lab.sh must stop before it
    # creates anything, name the backend it got, and say how to fix it.
    conf = tmp_path / "containers.conf"
    with open(os.path.join(REPO, "lab", "containers.conf")) as source:
        conf.write_text(source.read().replace('"netavark"', '"cni"')
                        .replace("/var/lib/dgxlab/networks", str(tmp_path / "networks")))
    storage = tmp_path / "storage.conf"
    storage.write_text('[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n'
                       % (tmp_path / "graph", tmp_path / "run"))
    env = dict(os.environ, LAB_CONTAINERS_CONF=str(conf), LAB_STORAGE_CONF=str(storage))
    for command in ("check-podman", "require"):
        result = subprocess.run([LAB, command], env=env, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "podman uses the 'cni' network backend" in result.stderr
        assert "the lab needs netavark" in result.stderr
        assert "tests/setup.sh" in result.stderr
