"""roles/apps/tasks/models.yml for real (ansible-playbook, the apps role's tasks_from: models.yml on localhost) against
fake_ollama, a small HTTP server that answers as Ollama does (tests/unit/plugins/modules/fake_ollama.py): a no-op
costs one executed task per app, a pull goes on slice by slice printing its progress, the time limit fails naming the
model and the bytes so far, and --check says what would be pulled and pulls nothing."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "plugins", "modules"))

from fake_ollama import Ollama, serve  # noqa: E402  (the unit tests' fake server)

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PLAY = """- name: The apps role's model pulls
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Models
      ansible.builtin.include_role:
        name: dgx_spark.cluster.apps
        tasks_from: models.yml
"""


@pytest.fixture
def ollama_url():
    stops = []

    def start(ollama):
        url, stop = serve(ollama)
        stops.append(stop)
        return url.rstrip("/")

    yield start
    for stop in stops:
        stop()


def run(tmp_path, apps, *extra):
    """ansible-playbook with the json callback; returns (rc, the callback's document, stderr)."""
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="0")
    plan = {"_apps_plan": {"models": apps}}
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(play), "-e", json.dumps(plan),
                             "-e", "ansible_python_interpreter=" + sys.executable] + list(extra),
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        raise AssertionError("not the json callback's output:\n" + result.stdout + result.stderr)
    return result.returncode, document, result.stderr


def results(document):
    """(task name, result) of every task result on localhost, in order, includes left out."""
    found = []
    for play in document["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost")
            if result is not None and result.get("action") not in ("include_tasks", "ansible.builtin.include_tasks",
                                                                   "include_role", "ansible.builtin.include_role"):
                found.append((task["task"]["name"].split(" : ", 1)[-1], result))  # without the role's name
    return found


def executed(document):
    return [(name, result) for name, result in results(document) if not result.get("skipped")]


def progress(document):
    return [result["msg"] for name, result in executed(document) if name.startswith("Apps | Model pull of")]


def pulls(ollama):
    return [body["model"] for method, path, body in ollama.requests if method == "POST"]


def test_nothing_missing_costs_one_task_per_app_and_prints_nothing(tmp_path, ollama_url):
    first = Ollama(present=["llama3.1:8b"])
    second = Ollama(present=["qwen3:latest", "phi4:latest"])
    apps = [{"app": "ollama", "url": ollama_url(first), "models": ["llama3.1:8b"]},
            {"app": "ollama-2", "url": ollama_url(second), "models": ["qwen3", "phi4"]}]
    rc, document, stderr = run(tmp_path, apps)
    assert rc == 0, stderr
    ran = executed(document)
    assert [name for name, result in ran] == [
        "Apps | Models present, or one slice of pulling the missing ones, for ollama",
        "Apps | Models present, or one slice of pulling the missing ones, for ollama-2"]
    assert not any(result.get("changed") for name, result in ran)
    assert progress(document) == [] and pulls(first) == pulls(second) == []
    # apps_model_pull_timeout 7200 s in slices of 30 s would nest 240 includes: lengthened to 100 slices of 72 s.
    assert ran[0][1]["invocation"]["module_args"]["time_slice"] == 72
    assert document["stats"]["localhost"]["failures"] == 0 and document["stats"]["localhost"]["changed"] == 0


def test_a_pull_goes_on_slice_by_slice_and_the_next_run_changes_nothing(tmp_path, ollama_url):
    # About 1.5 s of "download" (30 ticks of 0.05 s) in slices of 1 s, then a small second model.
    ollama = Ollama(sizes={"llama3.1:8b": 3000, "qwen3:latest": 10}, rate=100)
    apps = [{"app": "ollama", "url": ollama_url(ollama), "models": ["llama3.1:8b", "qwen3"]}]
    limits = ["-e", "apps_model_pull_slice=1", "-e", "apps_model_pull_timeout=60"]
    rc, document, stderr = run(tmp_path, apps, *limits)
    assert rc == 0, stderr
    lines = progress(document)
    assert len(lines) >= 2, lines
    assert lines[0].startswith("ollama: llama3.1:8b ") and " of 3 KB (" in lines[0]
    assert lines[0].endswith("; 1 more model after it")
    assert lines[-1].startswith("ollama: pulled ") and lines[-1].endswith("every model present")
    assert sorted(ollama.present) == ["llama3.1:8b", "qwen3:latest"]
    assert pulls(ollama)[:2] == ["llama3.1:8b", "llama3.1:8b"] and ollama.starts[1][1] > 0  # resumed
    assert document["stats"]["localhost"]["failures"] == 0 and document["stats"]["localhost"]["changed"] > 0
    rc, again, stderr = run(tmp_path, apps, *limits)
    assert rc == 0 and progress(again) == [] and again["stats"]["localhost"]["changed"] == 0, stderr
    assert len(executed(again)) == 1


def test_past_the_time_limit_the_run_fails_naming_the_model_and_the_bytes(tmp_path, ollama_url):
    ollama = Ollama(sizes={"llama3.1:8b": 100000}, rate=100)
    apps = [{"app": "ollama", "url": ollama_url(ollama), "models": ["llama3.1:8b"]}]
    rc, document, stderr = run(tmp_path, apps, "-e", "apps_model_pull_slice=1", "-e", "apps_model_pull_timeout=2")
    assert rc != 0
    assert len(progress(document)) == 2  # two slices of 1 s, each printed
    failed = [result for name, result in executed(document) if result.get("failed")]
    assert len(failed) == 1, failed
    msg = failed[0]["msg"]
    assert msg.startswith("The models of ollama were not all pulled within apps_model_pull_timeout (2 s, 2 slices "
                          "of 1 s): llama3.1:8b stands at ")
    assert " of 100000 bytes (ollama: llama3.1:8b " in msg and "the next run resumes it" in msg
    assert ollama.partial["llama3.1:8b"] > 0


def test_check_mode_says_what_would_be_pulled_and_pulls_nothing(tmp_path, ollama_url):
    ollama = Ollama(present=["qwen3:latest"], sizes={"llama3.1:8b": 10})
    apps = [{"app": "ollama", "url": ollama_url(ollama), "models": ["qwen3", "llama3.1:8b"]}]
    rc, document, stderr = run(tmp_path, apps, "--check")
    assert rc == 0, stderr
    assert progress(document) == ["ollama: would pull llama3.1:8b (check mode: nothing pulled)"]
    assert pulls(ollama) == [] and ollama.present == ["qwen3:latest"]
    assert [name for name, result in executed(document)] == [
        "Apps | Models present, or one slice of pulling the missing ones, for ollama",
        "Apps | Model pull of ollama"]
