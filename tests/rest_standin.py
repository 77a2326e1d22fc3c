"""A JSON-over-HTTP server on 127.0.0.1 that records every request and answers from a
route table: the base of the stand-ins for services that cannot run here."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class RestStandIn:
    """Subclasses fill ``routes``: (method, path regex, handler(groups, query, body) ->
    (status, payload)); a ``str`` payload is sent as text, anything else as JSON. Handlers
    run one at a time, under ``lock``."""

    not_found: tuple[int, dict] = (404, {"error": {"code": 404, "message": "not found"}})

    def __init__(self, routes: list[tuple]):
        self.requests: list[dict] = []
        self.routes = routes
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                url = urlsplit(self.path)
                path = unquote(url.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                with standin.lock:
                    standin.requests.append({"method": self.command, "path": path,
                                             "query": query, "body": body,
                                             "headers": dict(self.headers)})
                    status, payload = next(
                        (handler(m.groupdict(), query, body) for method, rx, handler
                         in standin.routes
                         if method == self.command and (m := re.match(rx, path))),
                        standin.not_found)
                text = isinstance(payload, str)  # a text answer (a pod's log)
                data = (payload if text else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, method: str, suffix: str) -> list[dict]:
        """The recorded requests of ``method`` whose path ends with ``suffix``."""
        return [r for r in self.requests if r["method"] == method and r["path"].endswith(suffix)]
