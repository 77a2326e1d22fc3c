"""A stand-in for the Vertex AI REST API (v1), for the Vertex SDK's own client code.

Vertex AI cannot run here. This server answers the few paths that
``PipelineJob.submit`` and the ``PipelineJobSchedule`` calls use, keeps jobs and
schedules in memory, and records every request. ``PipelineJob.submit`` also checks the
pipeline root's bucket through the Cloud Storage JSON API; with ``STORAGE_EMULATOR_HOST``
pointing here, that check is answered too (bucket missing -> created), so nothing leaves
the machine.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_PARENT = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
NOT_FOUND = (404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})


class VertexStandIn:
    def __init__(self):
        self.requests: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.fail_schedule_create = False
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._routes = [
            ("POST", _PARENT + r"/pipelineJobs$", self._create_job),
            ("GET", _PARENT + r"/pipelineJobs/(?P<id>[^/:]+)$", self._get_job),
            ("POST", _PARENT + r"/schedules$", self._create_schedule),
            ("GET", _PARENT + r"/schedules$", self._list_schedules),
            ("GET", _PARENT + r"/schedules/(?P<id>[^/:]+)$", self._get_schedule),
            ("DELETE", _PARENT + r"/schedules/(?P<id>[^/:]+)$", self._delete_schedule),
            ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)$", lambda g, q, b: NOT_FOUND),
            ("POST", r"/storage/v1/b$", lambda g, q, b: (200, {**(b or {}),
                                                               "kind": "storage#bucket"})),
            ("GET", r"/storage/v1/b/[^/]+/iam$", lambda g, q, b: (200, {"bindings": []})),
            ("PUT", r"/storage/v1/b/[^/]+/iam$", lambda g, q, b: (200, b or {})),
        ]
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                with standin._lock:
                    standin.requests.append({"method": self.command, "path": url.path,
                                             "query": query, "body": body})
                    status, payload = next(
                        (handler(m.groupdict(), query, body) for method, rx, handler
                         in standin._routes
                         if method == self.command and (m := re.match(rx, url.path))),
                        NOT_FOUND)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posted(self, suffix: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith(suffix)]

    def _create_job(self, g, query, body):
        name = f"{g['parent']}/pipelineJobs/{query['pipelineJobId']}"
        if name in self.jobs:
            return 409, {"error": {"code": 409, "message": "exists", "status": "ALREADY_EXISTS"}}
        self.jobs[name] = {**body, "name": name, "state": "PIPELINE_STATE_PENDING"}
        return 200, self.jobs[name]

    def _get_job(self, g, query, body):
        job = self.jobs.get(f"{g['parent']}/pipelineJobs/{g['id']}")
        return (200, job) if job else NOT_FOUND

    def _create_schedule(self, g, query, body):
        if self.fail_schedule_create:
            return 500, {"error": {"code": 500, "message": "stand-in told to fail",
                                   "status": "INTERNAL"}}
        name = f"{g['parent']}/schedules/{next(self._ids)}"
        self.schedules[name] = {**body, "name": name, "state": "ACTIVE"}
        return 200, self.schedules[name]

    def _list_schedules(self, g, query, body):
        wanted = re.fullmatch(r'display_name="(.*)"', query.get("filter", ""))
        return 200, {"schedules": [s for s in self.schedules.values()
                                   if not wanted or s["displayName"] == wanted.group(1)]}

    def _get_schedule(self, g, query, body):
        schedule = self.schedules.get(f"{g['parent']}/schedules/{g['id']}")
        return (200, schedule) if schedule else NOT_FOUND

    def _delete_schedule(self, g, query, body):
        if self.schedules.pop(f"{g['parent']}/schedules/{g['id']}", None) is None:
            return NOT_FOUND
        return 200, {"name": f"{g['parent']}/operations/{next(self._ids)}", "done": True,
                     "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}}
