"""A small HTTP server on 127.0.0.1 that answers as Ollama does, for the ollama_models tests (module and role).

Constructed from Ollama's API documentation and the captured streams in tests/unit/fixtures/ollama: ``GET
/api/tags``, and ``POST /api/pull`` streaming JSON lines while it "downloads" a model at a set rate, keeping a
partial download when the client goes away and resuming from it on the next pull (as Ollama does)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Ollama(object):
    """What the fake server knows: models present, their sizes, partial downloads, the requests it got."""

    def __init__(self, present=(), sizes=None, rate=None, tick=0.05):
        self.present = list(present)
        self.sizes = dict(sizes or {})
        self.partial = {}
        self.rate = rate  # bytes a tick; None: everything in the first tick
        self.tick = tick
        self.requests = []
        self.starts = []  # (model, bytes it had) of each download started
        self.stream = {}  # model -> a fixed list of lines to send instead of a download
        self.http_error = {}  # model -> (status, body)


def handler_for(ollama):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def answer(self, status, body, ctype="application/json"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            ollama.requests.append(("GET", self.path, None))
            if self.path != "/api/tags":
                return self.answer(404, "404 page not found", "text/plain")
            models = [{"name": name, "model": name, "size": ollama.sizes.get(name, 0)} for name in ollama.present]
            return self.answer(200, json.dumps({"models": models}))

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode())
            ollama.requests.append(("POST", self.path, body))
            model = body["model"]
            if model in ollama.http_error:
                return self.answer(*ollama.http_error[model])
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            try:
                if model in ollama.stream:
                    for line in ollama.stream[model]:
                        self.wfile.write(line.encode())
                    return
                self.pull(model)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def line(self, obj):
            self.wfile.write((json.dumps(obj) + "\n").encode())
            self.wfile.flush()

        def pull(self, model):
            size = ollama.sizes[model]
            digest = "sha256:" + "f" * 64
            done = ollama.partial.get(model, 0)
            ollama.starts.append((model, done))
            self.line({"status": "pulling manifest"})
            while True:
                self.line(dict({"status": "pulling ffffffffffff", "digest": digest, "total": size},
                               **({"completed": done} if done else {})))
                if done >= size:
                    break
                time.sleep(ollama.tick)
                done = min(size, done + (ollama.rate or size))
                ollama.partial[model] = done
            ollama.partial.pop(model, None)
            ollama.present.append(model)
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                self.line({"status": status})

    return Handler


def serve(ollama):
    """Start a server for ``ollama``; returns (url, stop)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(ollama))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop():
        httpd.shutdown()
        httpd.server_close()

    return "http://127.0.0.1:%d/" % httpd.server_address[1], stop
