"""/metrics and /healthz on one small HTTP server in a background thread.

/healthz answers 200 with the loop's status while the loop runs (also during a training run:
the run is a child process) and 503 once it stopped; anything else is 404.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


def make_server(
    host: str,
    port: int,
    status: Callable[[], dict[str, Any]],
    registry: CollectorRegistry = REGISTRY,
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                body = status()
                code = 200 if body.get("status") == "ok" else 503
                self._reply(code, "application/json", json.dumps(body).encode())
            else:
                self._reply(404, "application/json", b'{"error": "not found"}')

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes and probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="trainer-web", daemon=True)
    thread.start()
    return thread
