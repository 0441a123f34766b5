# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of ``ollama_models``: model names, what Ollama's ``/api/tags`` lists, what is missing, the JSON lines of
a streamed ``/api/pull`` folded into bytes and rates, and the one human line a person follows. No I/O, no Ansible
imports; the times are given by the caller.

A streamed pull, as Ollama sends it (one JSON object a line)::

    {"status":"pulling manifest"}
    {"status":"pulling 26bd607a51eb","digest":"sha256:26bd...","total":408734816}
    {"status":"pulling 26bd607a51eb","digest":"sha256:26bd...","total":408734816,"completed":123970144}
    ...                                  (one digest per layer: weights, template, licence, params, ...)
    {"status":"verifying sha256 digest"}
    {"status":"writing manifest"}
    {"status":"removing any unused layers"}      (older servers)
    {"status":"success"}

or, at any point, ``{"error":"..."}``. ``completed`` is left out while it is 0; a resumed layer starts at the size
of its partial download.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

DEFAULT_TAG = "latest"
UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


class OllamaModelsError(Exception):
    """Something Ollama answered that this module cannot use (the message says what)."""


def normalise(name):
    """Ollama's full name of a model: no tag means ``:latest`` (a registry's port is not a tag)."""
    name = (name or "").strip()
    if not name:
        raise OllamaModelsError("a model name is empty")
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else "%s:%s" % (name, DEFAULT_TAG)


def wanted(models):
    """The models asked for, normalised, each once, in the order given."""
    seen = []
    for model in models or []:
        name = normalise(model)
        if name not in seen:
            seen.append(name)
    return seen


def installed(payload):
    """The normalised names in a ``GET /api/tags`` answer (``{"models": [{"name": ..., "model": ...}, ...]}``)."""
    if isinstance(payload, (str, bytes)):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise OllamaModelsError("/api/tags did not answer JSON: %s" % exc)
    if not isinstance(payload, dict) or not isinstance(payload.get("models", []), list):
        raise OllamaModelsError("/api/tags did not answer {\"models\": [...]}")
    names = []
    for entry in payload.get("models") or []:
        name = entry.get("name") or entry.get("model") if isinstance(entry, dict) else None
        if name:
            names.append(normalise(name))
    return names


def split(models, present_names):
    """(present, missing): the models asked for that Ollama lists, and those it does not, in the order asked."""
    have = set(normalise(name) for name in present_names)
    asked = wanted(models)
    return [name for name in asked if name in have], [name for name in asked if name not in have]


# --- one streamed pull -------------------------------------------------------------------------------------------

def new_pull(model, now):
    """The state of one pull of ``model`` started at ``now`` (seconds, any monotonic clock)."""
    return {"model": model, "status": None, "layers": {}, "order": [], "started": now, "now": now,
            "success": False, "error": None}


def parse_line(line):
    """One line of the stream as a dict, or None for a blank line; OllamaModelsError when it is not JSON."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line:
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        raise OllamaModelsError("the pull stream sent a line that is not JSON: %r" % line[:200])
    if not isinstance(obj, dict):
        raise OllamaModelsError("the pull stream sent a line that is not a JSON object: %r" % line[:200])
    return obj


def _number(value):
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def feed(pull, line, now):
    """Fold one line of the stream (text, bytes or an already parsed dict) into ``pull``; returns ``pull``.

    Per digest: its total, the bytes completed (never going back) and the bytes it had when this call first saw
    it (what an earlier, interrupted pull left), so that the rate counts only what this call downloaded."""
    obj = line if isinstance(line, dict) else parse_line(line)
    pull["now"] = now
    if obj is None:
        return pull
    if obj.get("error"):
        pull["error"] = str(obj["error"])
        return pull
    status = obj.get("status")
    if status:
        pull["status"] = str(status)
    digest = obj.get("digest")
    if digest:
        completed = _number(obj.get("completed"))
        layer = pull["layers"].get(digest)
        if layer is None:
            layer = pull["layers"][digest] = {"total": 0, "completed": completed, "first": completed}
            pull["order"].append(digest)
        layer["total"] = max(layer["total"], _number(obj.get("total")))
        layer["completed"] = max(layer["completed"], completed)
    if status == "success":
        pull["success"] = True
        for layer in pull["layers"].values():
            layer["completed"] = max(layer["completed"], layer["total"])
    return pull


def completed(pull):
    """Bytes of the model present now (all layers seen, including what earlier pulls left)."""
    return sum(layer["completed"] for layer in pull["layers"].values())


def total(pull):
    """Bytes of the layers announced so far."""
    return sum(layer["total"] for layer in pull["layers"].values())


def downloaded(pull):
    """Bytes this pull downloaded (not what an earlier one left)."""
    return sum(max(0, layer["completed"] - layer["first"]) for layer in pull["layers"].values())


def summary(pull):
    """``{model, status, completed, total}``: what the module returns for a pull not finished."""
    return {"model": pull["model"], "status": pull["status"], "completed": completed(pull), "total": total(pull)}


# --- words for a person ------------------------------------------------------------------------------------------

def format_bytes(count):
    """Decimal units as Ollama prints them: 260 B, 1.1 KB, 4.7 GB, 408 MB."""
    value = float(max(0, count or 0))
    unit = UNITS[0]
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            break
        value /= 1000.0
    if unit == "B" or value >= 10:
        return "%d %s" % (int(value), unit)
    text = "%.1f" % value
    if text == "10.0":
        return "10 %s" % unit
    return "%s %s" % (text[:-2] if text.endswith(".0") else text, unit)


def rate(count, seconds):
    """``85 MB/s``; None when no time has passed."""
    if not seconds or seconds <= 0:
        return None
    return "%s/s" % format_bytes(count / seconds)


def _more(count):
    if count <= 0:
        return ""
    return "; %d more model%s after it" % (count, "" if count == 1 else "s")


def progress(present, pulled, pull, missing_after, downloaded_bytes=0, seconds=0, check_mode=False,
             would_pull=None):
    """The one line a person follows, after one call.

    ``present``: the models Ollama had; ``pulled``: those completed in this call; ``pull``: the state of the pull
    not finished (or None); ``missing_after``: what is still missing (the unfinished one first);
    ``downloaded_bytes``/``seconds``: what this call downloaded and how long it took (for the rate)."""
    if check_mode:
        return "ollama: would pull %s (check mode: nothing pulled)" % ", ".join(would_pull or [])
    if not pulled and pull is None and not missing_after:
        return "ollama: every model present (%s)" % ", ".join(present) if present else "ollama: no model asked for"
    words = []
    speed = rate(downloaded_bytes, seconds)
    if pulled:
        words.append("pulled %s" % ", ".join(pulled))
    if pull is not None:
        done, size = completed(pull), total(pull)
        if size:
            line = "%s %s of %s (%d%%)" % (pull["model"], format_bytes(done), format_bytes(size), done * 100 // size)
        else:
            line = "%s %s" % (pull["model"], pull["status"] or "waiting for Ollama's first answer")
        words.append(line + (", %s" % speed if speed else ""))
        return "ollama: " + "; ".join(words) + _more(len(missing_after) - 1)
    if missing_after:  # nothing answered for the next one yet
        words.append("%s next" % missing_after[0])
        return "ollama: " + "; ".join(words) + _more(len(missing_after) - 1)
    tail = " (%s downloaded, %s)" % (format_bytes(downloaded_bytes), speed) if speed and downloaded_bytes else ""
    return "ollama: " + "; ".join(words) + tail + "; every model present"


def result(present, missing_before, pulled, pull, downloaded_bytes, seconds):
    """The module's return values after a call that pulled (or tried to)."""
    missing_after = [name for name in missing_before if name not in pulled]
    return {
        "present": present,
        "pulled": pulled,
        "pulling": summary(pull) if pull is not None else None,
        "missing": missing_after,
        "done": not missing_after,
        "downloaded": downloaded_bytes,
        "changed": bool(pulled) or downloaded_bytes > 0,
        "progress": progress(present, pulled, pull, missing_after, downloaded_bytes, seconds),
    }


def error_message(model, error):
    return "ollama: pulling %s failed: %s" % (model, error)
