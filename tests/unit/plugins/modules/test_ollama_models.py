"""ollama_models module: main() in-process against fake_ollama (a small HTTP server on 127.0.0.1 that answers as
Ollama does: /api/tags, a streamed /api/pull that downloads at a set rate and resumes a partial download). The real
ansible.module_utils.urls does the HTTP."""

import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import ollama_models
from fake_ollama import Ollama, serve  # noqa: E402  (sibling helper)
from module_harness import ExitJson, FailJson, patch_exits  # noqa: E402  (sibling helper)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "ollama")


def fixture_lines(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return [line for line in handle if not line.startswith("#@ ")]


@pytest.fixture
def server():
    stops = []

    def start(ollama):
        url, stop = serve(ollama)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


def run(monkeypatch, url, check_mode=False, **args):
    args = dict(args, url=url)
    args.setdefault("models", ["llama3.1:8b"])
    if check_mode:
        args["_ansible_check_mode"] = True
    patch_exits(monkeypatch, [])
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            ollama_models.main()
    return caught.value.args[0]


def pulls(ollama):
    return [body["model"] for method, path, body in ollama.requests if method == "POST"]


def test_nothing_missing_changes_nothing_and_pulls_nothing(server, monkeypatch):
    ollama = Ollama(present=["llama3.1:8b", "qwen3:latest"])
    result = run(monkeypatch, server(ollama), models=["llama3.1:8b", "qwen3"])
    assert result["changed"] is False and result["done"] is True and result["missing"] == []
    assert result["present"] == ["llama3.1:8b", "qwen3:latest"] and result["pulling"] is None
    assert result["progress"] == "ollama: every model present (llama3.1:8b, qwen3:latest)"
    assert pulls(ollama) == [] and ollama.requests == [("GET", "/api/tags", None)]


def test_check_mode_says_what_would_be_pulled_and_pulls_nothing(server, monkeypatch):
    ollama = Ollama(present=["qwen3:latest"], sizes={"llama3.1:8b": 100})
    result = run(monkeypatch, server(ollama), check_mode=True, models=["qwen3", "llama3.1:8b", "phi4"])
    assert result["changed"] is True and result["missing"] == ["llama3.1:8b", "phi4:latest"]
    assert result["msg"] == "ollama: would pull llama3.1:8b, phi4:latest (check mode: nothing pulled)"
    assert pulls(ollama) == [] and ollama.present == ["qwen3:latest"]
    assert run(monkeypatch, server(Ollama(present=["qwen3:latest"])), check_mode=True,
               models=["qwen3"])["changed"] is False


def test_check_mode_with_ollama_not_running_yet_reports_every_model_missing(monkeypatch):
    result = run(monkeypatch, "http://127.0.0.1:9", check_mode=True, models=["llama3.1:8b"], timeout=2)
    assert "failed" not in result and result["changed"] is True and result["missing"] == ["llama3.1:8b"]
    assert result["msg"].startswith("ollama: would pull llama3.1:8b (check mode: nothing pulled) (GET ")


def test_ollama_unreachable_fails_outside_check_mode(monkeypatch):
    result = run(monkeypatch, "http://127.0.0.1:9", timeout=2)
    assert result["failed"] is True and result["msg"].startswith("ollama: cannot list the models: GET ")


def test_small_models_are_pulled_one_after_the_other_in_one_slice(server, monkeypatch):
    ollama = Ollama(sizes={"llama3.2:1b": 1300, "qwen3:latest": 5200}, rate=1000)
    url = server(ollama)
    result = run(monkeypatch, url, models=["llama3.2:1b", "qwen3"], time_slice=30)
    assert result["changed"] is True and result["done"] is True
    assert result["pulled"] == ["llama3.2:1b", "qwen3:latest"] and result["missing"] == []
    assert result["pulling"] is None and result["downloaded"] == 6500
    assert result["progress"].startswith("ollama: pulled llama3.2:1b, qwen3:latest (6.5 KB downloaded, ")
    assert result["progress"].endswith("/s); every model present")
    assert pulls(ollama) == ["llama3.2:1b", "qwen3:latest"]
    again = run(monkeypatch, url, models=["llama3.2:1b", "qwen3"])
    assert again["changed"] is False and pulls(ollama) == ["llama3.2:1b", "qwen3:latest"]


def test_a_big_model_goes_on_slice_by_slice_and_resumes(server, monkeypatch):
    # 40 ticks of 0.05 s: about 2 s in all, so a 1 s slice leaves it unfinished.
    ollama = Ollama(sizes={"llama3.1:8b": 4000, "qwen3:latest": 10}, rate=100)
    url = server(ollama)
    first = run(monkeypatch, url, models=["llama3.1:8b", "qwen3"], time_slice=1)
    assert first["changed"] is True and first["done"] is False and first["pulled"] == []
    assert first["missing"] == ["llama3.1:8b", "qwen3:latest"]
    assert first["pulling"]["model"] == "llama3.1:8b" and first["pulling"]["total"] == 4000
    assert 0 < first["pulling"]["completed"] < 4000 and first["downloaded"] == first["pulling"]["completed"]
    assert first["progress"].startswith("ollama: llama3.1:8b ")
    assert first["progress"].endswith("/s; 1 more model after it") and " of 4 KB (" in first["progress"]
    results = [first]
    while not results[-1]["done"] and len(results) < 8:
        results.append(run(monkeypatch, url, models=["llama3.1:8b", "qwen3"], time_slice=1))
    last = results[-1]
    assert last["done"] is True and last["missing"] == [] and "qwen3:latest" in last["pulled"]
    # The second slice resumed where the server's partial download stood (at least what the first slice saw).
    assert ollama.starts[0] == ("llama3.1:8b", 0)
    assert ollama.starts[1][0] == "llama3.1:8b" and ollama.starts[1][1] >= first["pulling"]["completed"]
    # Each slice counts only what it saw downloaded (a resumed pull's first line is its baseline): nothing twice.
    # What the server got after a slice's last line, until it noticed the closed connection, nobody counts.
    assert sum(r["downloaded"] for r in results) <= 4010
    assert pulls(ollama)[:2] == ["llama3.1:8b", "llama3.1:8b"]


def test_an_error_in_the_stream_fails_naming_the_model_and_ollamas_words(server, monkeypatch):
    ollama = Ollama(sizes={"llama3.2:1b": 10})
    ollama.stream["nosuch:latest"] = fixture_lines("ai-lab-pr-1626-pull-unknown-model.jsonl")
    result = run(monkeypatch, server(ollama), models=["llama3.2:1b", "nosuch"])
    assert result["failed"] is True
    assert result["msg"] == "ollama: pulling nosuch:latest failed: pull model manifest: file does not exist"
    assert result["pulled"] == ["llama3.2:1b"] and result["missing"] == ["nosuch:latest"]


def test_a_real_stream_read_to_success(server, monkeypatch):
    ollama = Ollama()
    ollama.stream["shaw/dmeta-embedding-zh:latest"] = fixture_lines("issue-4417-pull-shaw-dmeta-embedding-zh.jsonl")
    result = run(monkeypatch, server(ollama), models=["shaw/dmeta-embedding-zh"])
    assert result["done"] is True and result["pulled"] == ["shaw/dmeta-embedding-zh:latest"]
    assert result["downloaded"] == 408734816 + 260 and result["changed"] is True


def test_an_http_error_answer_fails_with_ollamas_error(server, monkeypatch):
    ollama = Ollama()
    ollama.http_error["llama3.1:8b"] = (500, '{"error":"mkdir /root/.ollama/models/blobs: permission denied"}')
    result = run(monkeypatch, server(ollama))
    assert result["failed"] is True and result["msg"] == (
        "ollama: pulling llama3.1:8b failed: mkdir /root/.ollama/models/blobs: permission denied")


def test_a_stream_that_ends_before_success_fails(server, monkeypatch):
    ollama = Ollama()
    ollama.stream["llama3.1:8b"] = ['{"status":"pulling manifest"}\n']
    result = run(monkeypatch, server(ollama))
    assert result["failed"] is True
    assert result["msg"] == ("ollama: pulling llama3.1:8b failed: Ollama ended the stream before success "
                             "(last status: pulling manifest)")


def test_bad_slice_and_empty_names_are_refused_before_asking(monkeypatch):
    assert run(monkeypatch, "http://127.0.0.1:9", time_slice=0)["failed"] is True
    result = run(monkeypatch, "http://127.0.0.1:9", models=["llama3.1:8b", " "])
    assert result["failed"] is True and result["msg"] == "models: a model name is empty"
