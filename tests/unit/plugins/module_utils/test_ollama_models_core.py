"""ollama_models core (pure): names (no tag is :latest), what /api/tags lists (a real answer, fixtures/ollama), what
is missing, the streamed /api/pull folded per digest (a real stream from ollama/ollama#4417, the documented example,
the real error stream of an unknown model, and constructed multi-layer and resumed pulls, labelled), sizes, rates
and the progress line."""

import json
import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import ollama_models as core

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "ollama")


def load(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


def fold(lines, model="m:latest", start=0.0, step=1.0):
    pull = core.new_pull(model, start)
    for number, line in enumerate(lines, 1):
        core.feed(pull, line, start + number * step)
    return pull


def layer(digest, total, completed=None, status=None):
    """A constructed progress line, as Ollama writes one (no "completed" while it is 0)."""
    obj = {"status": status or "pulling %s" % digest[7:19], "digest": digest, "total": total}
    if completed:
        obj["completed"] = completed
    return json.dumps(obj, separators=(",", ":"))


# Constructed: llama3.1:8b's five layers (weights, template, licence, params, system) with made-up digests and the
# sizes `ollama pull llama3.1:8b` prints (4.9 GB, 1.5 KB, 12 KB, 96 B, 487 B).
WEIGHTS, TEMPLATE, LICENCE, PARAMS, SYSTEM = ("sha256:%s" % (c * 64) for c in "abcde")
SIZES = {WEIGHTS: 4920753328, TEMPLATE: 1481, LICENCE: 12320, PARAMS: 96, SYSTEM: 487}


@pytest.mark.parametrize("name,expected", [
    ("llama3.1", "llama3.1:latest"),
    ("llama3.1:8b", "llama3.1:8b"),
    (" qwen3:8b ", "qwen3:8b"),
    ("shaw/dmeta-embedding-zh", "shaw/dmeta-embedding-zh:latest"),
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
    ("registry.local:5000/team/model", "registry.local:5000/team/model:latest"),  # a port is not a tag
])
def test_normalise(name, expected):
    assert core.normalise(name) == expected


def test_an_empty_name_is_refused():
    with pytest.raises(core.OllamaModelsError):
        core.normalise(" ")


def test_wanted_keeps_the_order_and_drops_repeats():
    assert core.wanted(["llama3.1", "qwen3:8b", "llama3.1:latest"]) == ["llama3.1:latest", "qwen3:8b"]


def test_installed_reads_a_real_tags_answer():
    assert core.installed(load("issue-12202-tags.json")) == ["embeddinggemma:latest", "gemma3n:e2b"]
    assert core.installed(load("issue-12202-tags.json").encode()) == ["embeddinggemma:latest", "gemma3n:e2b"]
    assert core.installed({"models": []}) == []
    # An entry with only "model" (older servers named it "name" only, newer both).
    assert core.installed({"models": [{"model": "phi4"}]}) == ["phi4:latest"]


@pytest.mark.parametrize("payload", ["<html>", "[]", '{"models": {}}'])
def test_installed_refuses_what_is_not_a_tags_answer(payload):
    with pytest.raises(core.OllamaModelsError):
        core.installed(payload)


def test_split_present_and_missing_in_the_order_asked():
    have = core.installed(load("issue-12202-tags.json"))
    assert core.split(["gemma3n:e2b", "llama3.1:8b", "embeddinggemma", "qwen3"], have) == (
        ["gemma3n:e2b", "embeddinggemma:latest"], ["llama3.1:8b", "qwen3:latest"])


def test_a_real_stream_is_folded_per_digest():
    lines = load("issue-4417-pull-shaw-dmeta-embedding-zh.jsonl").splitlines()
    pull = core.new_pull("shaw/dmeta-embedding-zh:latest", 0.0)
    seen = []
    for number, line in enumerate(lines, 1):
        core.feed(pull, line, float(number))
        seen.append((pull["status"], core.completed(pull), core.total(pull)))
    assert seen[0] == ("pulling manifest", 0, 0)
    # Announced with its total, nothing completed yet ("completed" left out while 0).
    assert seen[1] == ("pulling 26bd607a51eb", 0, 408734816)
    # The middle of the first layer: completed grows, the total stays one layer's.
    assert seen[16] == ("pulling 26bd607a51eb", 167797344, 408734816)
    # The last layer joins: totals are summed per digest, its repeated lines counted once.
    assert seen[20] == ("pulling 5bbbf644084d", 167797344, 408734816 + 260)
    assert seen[21] == ("pulling 5bbbf644084d", 167797344 + 260, 408734816 + 260)
    assert [status for status, _c, _t in seen[-4:]] == [
        "verifying sha256 digest", "writing manifest", "removing any unused layers", "success"]
    assert pull["success"] and pull["error"] is None
    # Success: every announced layer is complete (the lines left out of the excerpt said so).
    assert core.completed(pull) == core.total(pull) == 408734816 + 260
    assert pull["order"] == ["sha256:26bd607a51eb1f3a0d3beac444b977e03fa745def499add60c996c08c8c2ddcd",
                             "sha256:5bbbf644084d769b01eddb15aa45cfc8a562ddf6989b8a4f5a7ae0e9694da25e"]


def test_the_documented_example_stream():
    pull = fold(load("ollama-docs-pull-llama3.2.jsonl").splitlines(), "llama3.2:latest")
    assert pull["success"] and core.total(pull) == core.completed(pull) == 4661211936
    assert core.downloaded(pull) == 4661211936


def test_the_error_of_an_unknown_model_is_kept_in_ollamas_words():
    pull = fold(load("ai-lab-pr-1626-pull-unknown-model.jsonl").splitlines(), "unknown:latest")
    assert pull["error"] == "pull model manifest: file does not exist" and not pull["success"]
    assert core.error_message("unknown:latest", pull["error"]) == (
        "ollama: pulling unknown:latest failed: pull model manifest: file does not exist")


def test_lines_that_are_not_json_are_refused_and_blank_ones_skipped():
    pull = core.new_pull("m:latest", 0.0)
    core.feed(pull, b"\n", 1.0)
    assert pull["status"] is None and pull["now"] == 1.0
    with pytest.raises(core.OllamaModelsError, match="not JSON"):
        core.feed(pull, "<html>502 Bad Gateway</html>", 2.0)
    with pytest.raises(core.OllamaModelsError, match="not a JSON object"):
        core.feed(pull, "[1, 2]", 2.0)


def test_a_resumed_pull_counts_only_what_this_call_downloaded():
    # Constructed: an earlier call stopped at 2 GB of the weights; Ollama resumes from its partial file, so the
    # first line of the layer already says 2 GB.
    lines = ['{"status":"pulling manifest"}', layer(WEIGHTS, SIZES[WEIGHTS], 2000000000),
             layer(WEIGHTS, SIZES[WEIGHTS], 2600000000), layer(WEIGHTS, SIZES[WEIGHTS], 3100000000)]
    pull = fold(lines, "llama3.1:8b", start=100.0, step=2.0)
    assert core.completed(pull) == 3100000000 and core.downloaded(pull) == 1100000000
    assert core.summary(pull) == {"model": "llama3.1:8b", "status": "pulling aaaaaaaaaaaa",
                                  "completed": 3100000000, "total": SIZES[WEIGHTS]}


def test_completed_never_goes_back_and_a_cache_hit_is_not_downloaded():
    # Constructed: a layer another model shares is reported complete at once; a late, smaller "completed" (lines
    # of parallel parts arriving out of order) does not lower the count.
    pull = fold([layer(LICENCE, SIZES[LICENCE], SIZES[LICENCE]), layer(WEIGHTS, SIZES[WEIGHTS]),
                 layer(WEIGHTS, SIZES[WEIGHTS], 500), layer(WEIGHTS, SIZES[WEIGHTS], 400)])
    assert core.completed(pull) == SIZES[LICENCE] + 500
    assert core.downloaded(pull) == 500


def test_a_multi_layer_pull_sums_every_layer():
    lines = ['{"status":"pulling manifest"}']
    for digest in (WEIGHTS, TEMPLATE, LICENCE, PARAMS, SYSTEM):
        lines += [layer(digest, SIZES[digest]), layer(digest, SIZES[digest], SIZES[digest])]
    lines += ['{"status":"verifying sha256 digest"}', '{"status":"writing manifest"}', '{"status":"success"}']
    pull = fold(lines, "llama3.1:8b")
    assert core.total(pull) == core.completed(pull) == core.downloaded(pull) == sum(SIZES.values())
    assert len(pull["layers"]) == 5 and pull["success"]


@pytest.mark.parametrize("count,text", [
    (0, "0 B"), (260, "260 B"), (999, "999 B"), (1000, "1 KB"), (1481, "1.5 KB"), (12320, "12 KB"),
    (408734816, "408 MB"), (4661211936, "4.7 GB"), (4920753328, "4.9 GB"), (9990000000, "10 GB"),
    (2147483648, "2.1 GB"), (85000000, "85 MB"), (None, "0 B"),
])
def test_format_bytes_like_ollama(count, text):
    assert core.format_bytes(count) == text


def test_rate():
    assert core.rate(85000000 * 30, 30) == "85 MB/s"
    assert core.rate(1000, 0) is None


def pulling(model, done, total, status="pulling aaaaaaaaaaaa"):
    pull = core.new_pull(model, 0.0)
    core.feed(pull, {"status": status, "digest": WEIGHTS, "total": total, "completed": done}, 1.0)
    return pull


def test_progress_lines():
    pull = pulling("llama3.1:8b", 2147483648, 4920753328)
    assert core.progress([], [], pull, ["llama3.1:8b", "qwen3:8b"], 85000000 * 30, 30) == (
        "ollama: llama3.1:8b 2.1 GB of 4.9 GB (43%), 85 MB/s; 1 more model after it")
    assert core.progress([], ["llama3.2:1b"], pull, ["llama3.1:8b", "a:1", "b:2"], 85000000, 1) == (
        "ollama: pulled llama3.2:1b; llama3.1:8b 2.1 GB of 4.9 GB (43%), 85 MB/s; 2 more models after it")
    assert core.progress([], [], core.new_pull("qwen3:8b", 0.0), ["qwen3:8b"], 0, 0) == (
        "ollama: qwen3:8b waiting for Ollama's first answer")
    manifest = core.feed(core.new_pull("qwen3:8b", 0.0), '{"status":"pulling manifest"}', 30.0)
    assert core.progress([], [], manifest, ["qwen3:8b"], 0, 30) == "ollama: qwen3:8b pulling manifest, 0 B/s"
    assert core.progress(["qwen3:8b"], ["llama3.1:8b"], None, [], 4920753328, 60) == (
        "ollama: pulled llama3.1:8b (4.9 GB downloaded, 82 MB/s); every model present")
    assert core.progress(["qwen3:8b", "llama3.1:8b"], [], None, []) == (
        "ollama: every model present (qwen3:8b, llama3.1:8b)")
    assert core.progress([], [], None, ["a:1", "b:2"], check_mode=True, would_pull=["a:1", "b:2"]) == (
        "ollama: would pull a:1, b:2 (check mode: nothing pulled)")


def test_result_of_a_slice_that_left_a_pull_unfinished():
    pull = pulling("llama3.1:8b", 2147483648, 4920753328)
    res = core.result(["qwen3:8b"], ["llama3.2:1b", "llama3.1:8b"], ["llama3.2:1b"], pull, 1300000000, 30)
    assert res["pulled"] == ["llama3.2:1b"] and res["missing"] == ["llama3.1:8b"] and not res["done"]
    assert res["pulling"] == {"model": "llama3.1:8b", "status": "pulling aaaaaaaaaaaa", "completed": 2147483648,
                              "total": 4920753328}
    assert res["changed"] is True and res["present"] == ["qwen3:8b"]


def test_result_of_a_slice_that_finished_everything_and_of_one_that_got_nothing():
    res = core.result([], ["llama3.2:1b"], ["llama3.2:1b"], None, 0, 2)
    # Nothing downloaded (every layer was there already) but the model is now present: a change.
    assert res["done"] and res["changed"] and res["pulling"] is None and res["missing"] == []
    stalled = core.result([], ["llama3.1:8b"], [], core.new_pull("llama3.1:8b", 0.0), 0, 30)
    assert not stalled["done"] and stalled["changed"] is False
