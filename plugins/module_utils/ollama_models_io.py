# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O layer of ``ollama_models``: Ollama's HTTP API through ansible.module_utils.urls (``GET /api/tags``, a streamed
``POST /api/pull`` read line by line until it ends or the time slice is over). Every line goes to the pure core
(ollama_models); nothing here decides anything but when to stop reading."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url
from ansible_collections.dgx_spark.cluster.plugins.module_utils import ollama_models as core

clock = time.monotonic


class OllamaUnreachable(Exception):
    """Ollama could not be asked (no answer, not HTTP 200, not JSON)."""


class PullFailed(Exception):
    """Ollama refused or broke off the pull of ``model`` (``error`` says why, in Ollama's words where it gave any)."""

    def __init__(self, model, error, pulled):
        super(PullFailed, self).__init__("%s: %s" % (model, error))
        self.model, self.error, self.pulled = model, error, pulled


def _error_of(exc):
    """Ollama's own error text of an HTTP error answer ({"error": ...}), else the status."""
    try:
        return str(json.loads(exc.read().decode("utf-8", "replace"))["error"])
    except (ValueError, KeyError, TypeError, AttributeError, OSError, HTTPException):
        # No body, not JSON, no "error": the status says enough.
        return "HTTP %s %s" % (exc.code, exc.reason)


def get_tags(url, timeout, validate_certs):
    """The models Ollama at ``url`` lists (normalised names)."""
    try:
        response = open_url(url + "/api/tags", method="GET", timeout=timeout, validate_certs=validate_certs,
                            headers={"Accept": "application/json"})
        try:
            body = response.read()
        finally:
            response.close()
    except HTTPError as exc:
        raise OllamaUnreachable("GET %s/api/tags answered %s" % (url, _error_of(exc)))
    except (URLError, HTTPException, OSError, ValueError) as exc:
        raise OllamaUnreachable("GET %s/api/tags: %s" % (url, exc))
    try:
        return core.installed(body)
    except core.OllamaModelsError as exc:
        raise OllamaUnreachable("%s (from %s)" % (exc, url))


def _read_until(response, pull, deadline, now):
    """Feed the stream's lines into ``pull`` until success, an error, its end or the deadline; True at its end."""
    while now() < deadline:
        try:
            line = response.readline()
        except socket.timeout:
            return False  # nothing came before the slice was over: the next slice asks again
        if not line:
            return True
        core.feed(pull, line, now())
        if pull["error"] or pull["success"]:
            return True
    return False


def pull_slice(url, missing, deadline, validate_certs, now=None):
    """Pull ``missing`` (normalised names) one after the other until ``deadline`` (a ``now()`` value).

    Returns (pulled, pull, downloaded): the models completed, the state of the one not finished (None when every
    model was pulled) and the bytes downloaded. Closing the connection at the deadline stops Ollama's pull; it keeps
    what it downloaded and the next pull of that model resumes from there. Raises PullFailed."""
    now = now or clock
    pulled, downloaded = [], 0
    for model in missing:
        if now() >= deadline:
            return pulled, core.new_pull(model, now()), downloaded
        pull = core.new_pull(model, now())
        try:
            response = open_url(url + "/api/pull", method="POST", data=json.dumps({"model": model, "stream": True}),
                                headers={"Content-Type": "application/json", "Accept": "application/x-ndjson"},
                                timeout=max(1.0, deadline - now()), validate_certs=validate_certs)
        except HTTPError as exc:
            raise PullFailed(model, _error_of(exc), pulled)
        except (URLError, HTTPException, OSError, ValueError) as exc:
            raise PullFailed(model, "POST %s/api/pull: %s" % (url, exc), pulled)
        try:
            ended = _read_until(response, pull, deadline, now)
        except core.OllamaModelsError as exc:
            raise PullFailed(model, str(exc), pulled)
        except (URLError, HTTPException, OSError, ValueError) as exc:
            raise PullFailed(model, "reading the pull stream: %s" % exc, pulled)
        finally:
            response.close()
        downloaded += core.downloaded(pull)
        if pull["error"]:
            raise PullFailed(model, pull["error"], pulled)
        if pull["success"]:
            pulled.append(model)
            continue
        if ended:
            raise PullFailed(model, "Ollama ended the stream before success (last status: %s)" % pull["status"],
                             pulled)
        return pulled, pull, downloaded
    return pulled, None, downloaded
