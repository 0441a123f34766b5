"""Structural promises about the shipped collection (plugins, roles, playbooks), checked on the files themselves."""

import ast
import os
import re

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED = ("plugins", "roles", "playbooks")


def shipped_files():
    for top in SHIPPED:
        for root, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith((".py", ".yml", ".yaml", ".j2")):
                    yield os.path.join(root, name)


def test_shipped_code_knows_nothing_about_the_test_stand_ins():
    # Tests may know everything about the product, never the other way round.
    mentions = []
    for path in shipped_files():
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                if re.search(r"stand-?in", line, re.IGNORECASE):
                    mentions.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, line.strip()))
    assert mentions == []


def glue_lines(path):
    """Lines of functions and classes in a module file (its documentation strings and imports excluded)."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    return sum(node.end_lineno - node.lineno + 1 for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef)))


# Module files that are glue: argument spec, a short main(); decisions in module_utils cores, I/O in *_io.py.
@pytest.mark.parametrize("module", ["fabric_ip", "kubeadm_node", "cni_cleanup", "cluster_lock", "wake_on_lan",
                                    "health_report", "ollama_models", "containerd_image"])
def test_module_files_are_glue(module):
    assert glue_lines(os.path.join(REPO, "plugins", "modules", module + ".py")) <= 60


def test_every_playbook_the_docs_name_exists():
    # Say only what is true today: a playbook named in the README, galaxy.yml or a playbook's comments exists.
    names = set()
    texts = [os.path.join(REPO, "README.md"), os.path.join(REPO, "galaxy.yml")]
    texts += [os.path.join(REPO, "playbooks", name) for name in os.listdir(os.path.join(REPO, "playbooks"))
              if name.endswith(".yml")]
    for path in texts:
        with open(path) as handle:
            names.update(re.findall(r"\b([a-z]+(?:-[a-z]+)+\.yml)\b", handle.read()))
    missing = sorted(name for name in names if not os.path.exists(os.path.join(REPO, "playbooks", name)))
    assert missing == []
