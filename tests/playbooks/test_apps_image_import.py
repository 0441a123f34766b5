"""roles/apps/tasks/images.yml for real (ansible-playbook, the role's own defaults), on two local "nodes" whose
containerd is a fake ``ctr`` on PATH: each node's image names live in a JSON file, ``images import`` reads the
``manifest.json`` of a real docker-archive tar (its RepoTags, named as containerd names them) and prints
``unpacking <name> (<digest>)...done`` as containerd 1.6's ctr does. Each node runs its modules through its own
interpreter wrapper, which tells the fake which node it is.

What it proves: one read per node when nothing is missing (a second run changed=0, no import, no copy); a missing
image's archive copied (0600, in a 0700 directory), imported on that node only, and removed; --check changes
nothing; an archive missing on the controller fails first, naming the app, the image, the path and image_archive;
an archive that adds another name fails naming it, and the copy is removed all the same."""

import json
import os
import stat
import subprocess
import sys
import tarfile
import textwrap

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
COMFYUI = "localhost/comfyui:v0.9.1-arm64"
OLLAMA = "ollama/ollama:0.6.5"

FAKE_CTR = r'''#!%(python)s
"""A fake ctr: images ls -q and images import of docker-archive tars, per node (FAKE_NODE)."""
import json, os, sys, tarfile
state_dir = %(state)r
node = os.environ["FAKE_NODE"]
argv = sys.argv[1:]
with open(os.path.join(state_dir, "ctr.log"), "a") as log:
    log.write(json.dumps([node] + argv) + "\n")
assert argv[:4] == ["--address", "/run/containerd/containerd.sock", "-n", "k8s.io"], argv
path = os.path.join(state_dir, node + ".json")
names = json.load(open(path)) if os.path.exists(path) else []
if argv[4:] == ["images", "ls", "-q"]:
    sys.stdout.write("".join(n + "\n" for n in names))
    sys.exit(0)
if argv[4:6] == ["images", "import"]:
    with tarfile.open(argv[6]) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    for entry in manifest:
        for tag in entry["RepoTags"]:
            name = tag if "/" in tag.split(":")[0] else "docker.io/library/" + tag
            names.append(name)
            sys.stdout.write("unpacking %%s (sha256:%%s)...done\n" %% (name, "ab" * 32))
    json.dump(names, open(path, "w"))
    sys.exit(0)
sys.exit("unexpected ctr call %%s" %% argv)
'''


def docker_archive(path, *tags):
    manifest = path + ".manifest.json"
    with open(manifest, "w") as handle:
        json.dump([{"Config": "blobs/sha256/" + "ab" * 32, "RepoTags": list(tags), "Layers": []}], handle)
    with tarfile.open(path, "w") as tar:
        tar.add(manifest, arcname="manifest.json")
    os.unlink(manifest)
    return path


class Nodes(object):
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.bin = tmp_path / "bin"
        self.import_dir = str(tmp_path / "node-images")
        self.state.mkdir()
        self.bin.mkdir()
        ctr = self.bin / "ctr"
        ctr.write_text(FAKE_CTR % {"python": sys.executable, "state": str(self.state)})
        ctr.chmod(0o755)
        hosts = {}
        for node in ("spark-2959", "spark-ba63"):
            wrapper = self.bin / ("python-" + node)
            wrapper.write_text("#!/bin/sh\nFAKE_NODE=%s exec %s \"$@\"\n" % (node, sys.executable))
            wrapper.chmod(0o755)
            hosts[node] = {"ansible_connection": "local", "ansible_python_interpreter": str(wrapper),
                           "ansible_become": False}
        (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": hosts}}))
        (tmp_path / "play.yml").write_text(textwrap.dedent("""\
            - name: Local images of the apps
              hosts: spark-2959
              gather_facts: false
              tasks:
                - name: The apps role's image import
                  ansible.builtin.include_role:
                    name: apps
                    tasks_from: images
            """))

    def holds(self, node, *names):
        (self.state / (node + ".json")).write_text(json.dumps(list(names)))

    def names(self, node):
        path = self.state / (node + ".json")
        return json.loads(path.read_text()) if path.exists() else []

    def calls(self):
        path = self.state / "ctr.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def run(self, imports, *extra):
        plan = self.tmp / "plan.json"
        plan.write_text(json.dumps({"_apps_plan": {"image_imports": imports},
                                    "apps_image_import_dir": self.import_dir}))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=str(self.bin) + os.pathsep + os.environ.get("PATH", ""))
        (self.state / "ctr.log").write_text("")
        return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(self.tmp / "hosts.yml"), str(self.tmp / "play.yml"),
                               "-e", "@" + str(plan)] + list(extra),
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)


def recap(result):
    line = [text for text in result.stdout.splitlines() if text.startswith("spark-2959")][-1]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


@pytest.fixture
def nodes(tmp_path):
    return Nodes(tmp_path)


def plan_for(nodes, comfyui_archive):
    return [{"node": "spark-2959", "app": "comfyui", "image": COMFYUI, "archive": comfyui_archive},
            {"node": "spark-ba63", "app": "ollama", "image": OLLAMA,
             "archive": docker_archive(str(nodes.tmp / "ollama.tar"), OLLAMA)}]


def test_a_missing_image_is_imported_on_its_node_then_a_second_run_changes_nothing(nodes):
    nodes.holds("spark-ba63", "docker.io/ollama/ollama:0.6.5")
    imports = plan_for(nodes, docker_archive(str(nodes.tmp / "comfyui.tar"), COMFYUI))
    result = nodes.run(imports)
    assert result.returncode == 0, result.stdout + result.stderr
    assert nodes.names("spark-2959") == [COMFYUI] and nodes.names("spark-ba63") == ["docker.io/ollama/ollama:0.6.5"]
    copied = os.path.join(nodes.import_dir, "comfyui-comfyui.tar")
    assert [c for c in nodes.calls() if c[6:7] == ["import"]] == [
        ["spark-2959", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images", "import", copied]]
    assert not os.path.exists(copied) and stat.S_IMODE(os.stat(nodes.import_dir).st_mode) == 0o700
    assert "spark-2959: localhost/comfyui:v0.9.1-arm64" in result.stdout and int(recap(result)["changed"]) >= 3
    again = nodes.run(imports)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again)["changed"] == "0" and "FAILED" not in again.stdout
    assert sorted(c[0] for c in nodes.calls()) == ["spark-2959", "spark-ba63"]  # one read per node, nothing else
    assert again.stdout.count("(item=") == 2 and again.stdout.count("skipping:") == 1  # the import include


def test_check_mode_changes_nothing_and_says_what_would(nodes):
    imports = plan_for(nodes, docker_archive(str(nodes.tmp / "comfyui.tar"), COMFYUI))
    nodes.holds("spark-ba63", "docker.io/ollama/ollama:0.6.5")
    result = nodes.run(imports, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(recap(result)["changed"]) >= 1 and nodes.names("spark-2959") == []
    assert [c for c in nodes.calls() if c[6:7] != ["ls"]] == [] and not os.path.exists(nodes.import_dir)


def test_an_archive_missing_on_the_controller_fails_first(nodes):
    absent = str(nodes.tmp / "never-saved" / "comfyui.tar")
    result = nodes.run(plan_for(nodes, absent))
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert ("spark-2959 lacks the image %s of the app comfyui, and its archive %s (the catalogue's image_archive for "
            "comfyui) does not exist on the controller" % (COMFYUI, absent)) in text
    assert [c for c in nodes.calls() if c[6:7] == ["import"]] == [] and not os.path.exists(nodes.import_dir)


def test_an_archive_holding_another_name_fails_naming_it_and_is_removed(nodes):
    wrong = docker_archive(str(nodes.tmp / "comfyui.tar"), "comfyui:v0.9.1-arm64")  # saved without localhost/
    nodes.holds("spark-ba63", "docker.io/ollama/ollama:0.6.5")
    result = nodes.run(plan_for(nodes, wrong))
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "is still missing from containerd (namespace k8s.io) after importing" in text
    assert "it added docker.io/library/comfyui:v0.9.1-arm64" in text
    assert os.listdir(nodes.import_dir) == []
