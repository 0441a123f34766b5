"""The LAB STAND-IN for the apps (lab/app-standin) and the lab inventory that names it.

The stand-in's per-connection handler (serve) is plain POSIX sh: here it runs under this machine's sh (busybox's
when installed, as in the image) with one request on stdin, as nc -ll -e gives it one connection. The lab
inventory's apps_overrides must pass the catalogue's checks and give every app the stand-in, no GPU and the
stand-in's port on the catalogue's target port.
"""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import apps as core

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STANDIN = os.path.join(REPO, "lab", "app-standin")
IMAGE = "localhost/dgxlab-app-standin:1"
SHELL = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["/bin/sh"]


def _yaml(*path):
    with open(os.path.join(REPO, *path)) as handle:
        return yaml.safe_load(handle)


CATALOGUE = _yaml("inventory", "group_vars", "all", "apps.yml")
LAB = _yaml("inventory", "lab", "hosts.yml")
# With {{ inventory_dir }} as Ansible renders it for the lab inventory (the local image's archive path).
LAB_OVERRIDES = json.loads(json.dumps(LAB["spark_cluster"]["vars"]["_lab_apps"]["apps_overrides"]).replace(
    "{{ inventory_dir }}", os.path.join(REPO, "inventory", "lab")))
# The LAB STAND-IN under the name only its archive holds (lab.sh links it to .lab/app-local.tar).
LOCAL_IMAGE = "localhost/dgxlab-app-local:1"
NODES = {"spark-2959": 1, "spark-ba63": 1}
POOL = ["192.168.86.200-192.168.86.220"]


def serve(request, tmp_path, app="ollama", **env):
    """The handler's raw answer to ``request`` (bytes), as LAB_STANDIN_APP ``app``: (status line, headers, body)."""
    environment = dict(os.environ, LAB_STANDIN_APP=app, OLLAMA_MODELS=str(tmp_path / "models"), **env)
    result = subprocess.run(SHELL + [os.path.join(STANDIN, "serve")], input=request, env=environment,
                            capture_output=True, check=True, timeout=30)
    head, _blank, body = result.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def get(path, tmp_path, app="ollama", **env):
    return serve(("GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.34\r\n\r\n" % path).encode(), tmp_path,
                 app, **env)


def request_bytes(path, body, method="POST"):
    return ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        method, path, len(body), body)).encode()


def post(path, body, tmp_path, method="POST", **env):
    return serve(request_bytes(path, body, method), tmp_path, **env)


def test_ollama_pull_streams_progress_and_the_model_is_listed_and_deleted(tmp_path):
    assert get("/api/tags", tmp_path)[2] == '{"models":[]}'
    status, headers, body = post("/api/pull", '{"model": "llama3.2:1b"}', tmp_path)
    assert status == "HTTP/1.1 200 OK" and headers["Content-Type"] == "application/x-ndjson"
    assert headers["X-Lab-Standin"] == "ollama" and "Content-Length" not in headers
    lines = [yaml.safe_load(line) for line in body.splitlines()]
    assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"status": "success"}
    progress = [line for line in lines if "total" in line]
    # By default the 4096 bytes in four ticks; "completed" left out while it is 0, as Ollama does.
    assert [line.get("completed") for line in progress] == [None, 1024, 2048, 3072, 4096]
    assert set(line["total"] for line in progress) == {4096}
    # Not streamed, the legacy "name" field, no tag: :latest, as Ollama names it.
    assert post("/api/pull", '{"name": "qwen", "stream": false}', tmp_path)[2] == '{"status":"success"}'
    status, headers, body = get("/api/tags", tmp_path)
    assert int(headers["Content-Length"]) == len(body)
    assert sorted(model["name"] for model in yaml.safe_load(body)["models"]) == ["llama3.2:1b", "qwen:latest"]
    assert post("/api/delete", '{"model": "qwen"}', tmp_path, method="DELETE")[0] == "HTTP/1.1 200 OK"
    assert [model["name"] for model in yaml.safe_load(get("/api/tags", tmp_path)[2])["models"]] == ["llama3.2:1b"]
    assert post("/api/delete", '{"model": "qwen"}', tmp_path, method="DELETE")[0] == "HTTP/1.1 404 Not Found"
    assert post("/api/pull", '{}', tmp_path)[0] == "HTTP/1.1 400 Bad Request"


def test_ollama_pull_cut_off_leaves_a_partial_download_and_the_next_pull_resumes_it(tmp_path):
    env = dict(os.environ, LAB_STANDIN_APP="ollama", OLLAMA_MODELS=str(tmp_path / "models"),
               LAB_STANDIN_PULL_BYTES="1000", LAB_STANDIN_PULL_RATE="100")  # ten ticks of 0.2 s
    proc = subprocess.Popen(SHELL + [os.path.join(STANDIN, "serve")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env)
    proc.stdin.write(request_bytes("/api/pull", '{"model": "llama3.1:8b"}'))
    proc.stdin.close()
    seen = []
    try:
        while True:
            line = proc.stdout.readline()
            assert line, "the stream ended before 300 bytes: %r" % seen
            if line.startswith(b"{"):
                seen.append(yaml.safe_load(line))
                if seen[-1].get("completed", 0) >= 300:
                    break
    finally:
        proc.stdout.close()  # the client goes away mid-pull
        proc.wait(timeout=30)
    assert proc.returncode != 0  # the stand-in's next write to the closed connection ended it
    partial = tmp_path / "models" / "lab-standin" / ".partial" / "llama3.1:8b"
    kept = partial.stat().st_size
    assert 300 <= kept < 1000
    assert get("/api/tags", tmp_path)[2] == '{"models":[]}'  # not listed until complete
    body = post("/api/pull", '{"model": "llama3.1:8b"}', tmp_path, LAB_STANDIN_PULL_BYTES="1000",
                LAB_STANDIN_PULL_RATE="500")[2]
    lines = [yaml.safe_load(line) for line in body.splitlines()]
    progress = [line for line in lines if "total" in line]
    assert progress[0]["completed"] == kept and progress[-1]["completed"] == 1000  # resumed, then completed
    assert len(progress) == 1 + -(-(1000 - kept) // 500) and lines[-1] == {"status": "success"}
    assert not partial.exists()
    listed = yaml.safe_load(get("/api/tags", tmp_path)[2])["models"]
    assert [(model["name"], model["size"]) for model in listed] == [("llama3.1:8b", 1000)]
    # Present: a pull again finds it complete at once.
    again = [yaml.safe_load(line) for line in post("/api/pull", '{"model": "llama3.1:8b"}', tmp_path,
                                                   LAB_STANDIN_PULL_BYTES="1000")[2].splitlines()]
    assert [line.get("completed") for line in again if "total" in line] == [1000]


def test_unknown_paths_and_methods_are_refused_and_every_answer_is_labelled(tmp_path):
    assert get("/nope", tmp_path)[0] == "HTTP/1.1 404 Not Found"
    assert get("/api/pull", tmp_path)[0] == "HTTP/1.1 405 Method Not Allowed"
    assert get("/health", tmp_path, app="ollama")[0] == "HTTP/1.1 404 Not Found"  # Open WebUI's, not Ollama's
    status, headers, body = get("/lab-standin?x=1", tmp_path, app="openwebui")
    assert status == "HTTP/1.1 200 OK" and headers["X-Lab-Standin"] == "openwebui"
    assert yaml.safe_load(body)["lab_standin"] is True
    assert "LAB STAND-IN" in get("/", tmp_path, app="comfyui")[2]


def test_vllm_lists_the_model_its_preset_serves(tmp_path):
    body = get("/v1/models", tmp_path, app="vllm", LAB_STANDIN_MODEL="microsoft/phi-4",
               LAB_STANDIN_MAX_MODEL_LEN="4096")[2]
    assert yaml.safe_load(body)["data"] == [{"id": "microsoft/phi-4", "object": "model", "owned_by": "vllm",
                                             "root": "microsoft/phi-4", "max_model_len": 4096}]
    assert get("/health", tmp_path, app="vllm")[0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("app", sorted(CATALOGUE["apps_catalogue"]))
def test_every_app_health_path_of_the_catalogue_answers_under_the_lab_overrides(app, tmp_path):
    entry = core.entries(CATALOGUE["apps_catalogue"], LAB_OVERRIDES)[app]
    assert get(entry["health_path"], tmp_path, app=entry["env"]["LAB_STANDIN_APP"])[0] == "HTTP/1.1 200 OK"


def test_the_lab_overrides_pass_the_checks_with_every_app_started():
    catalogue = dict((name, dict(entry, enabled=True, state="started"))
                     for name, entry in CATALOGUE["apps_catalogue"].items())
    assert core.check_catalogue(catalogue, NODES, POOL, overrides=LAB_OVERRIDES,
                                presets=CATALOGUE["apps_vllm_presets"]) == []
    for app in core.plan(catalogue, overrides=LAB_OVERRIDES, presets=CATALOGUE["apps_vllm_presets"]):
        deployment = [obj for obj in app["present"] if obj["kind"] == "Deployment"][0]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = dict((item["name"], item.get("value")) for item in container.get("env", []))
        local = app["name"] in ("comfyui", "comfyui-model-manager")
        assert container["image"] == (LOCAL_IMAGE if local else IMAGE), app["name"]
        assert container["imagePullPolicy"] == "Never", app["name"]
        assert (app["image_archive"] == os.path.join(REPO, "inventory", "lab", "../../.lab/app-local.tar")) == local
        assert "runtimeClassName" not in pod and "nvidia.com/gpu" not in container["resources"]["limits"]
        # The stand-in listens where the catalogue's Service sends the traffic.
        assert env["LAB_STANDIN_PORT"] == str(container["ports"][0]["containerPort"]), app["name"]
        for obj in app["present"]:
            if obj["kind"] == "PersistentVolumeClaim":
                assert obj["spec"]["storageClassName"] == "dgxlab-apps-hostpath", app["name"]
        if app["name"] == "vllm":  # the preset's command, run by the stand-in's vllm script
            assert container["command"][:2] == ["vllm", "serve"]
            assert os.access(os.path.join(STANDIN, "bin", "vllm"), os.X_OK)


def test_the_lab_keeps_apps_off_and_builds_the_image_it_names():
    assert CATALOGUE["apps_enabled"] is False
    for host in ("spark-2959", "spark-ba63"):
        group = "control_plane" if host == "spark-2959" else "workers"
        assert "apps_enabled" not in LAB["spark_cluster"]["children"][group]["hosts"][host]
    with open(os.path.join(REPO, "lab", "build-node-artifacts.sh")) as handle:
        script = handle.read()
    assert "STANDIN_IMAGE=%s\n" % IMAGE in script and "LOCAL_STANDIN_IMAGE=%s\n" % LOCAL_IMAGE in script
    for name in ("entrypoint", "serve", os.path.join("bin", "vllm")):
        assert os.access(os.path.join(STANDIN, name), os.X_OK), name
