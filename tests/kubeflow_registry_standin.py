"""A stand-in for the Kubeflow Model Registry's REST API (``/api/model_registry/v1``).

The real server needs a Kubernetes cluster and a database; it cannot run here. This one
answers the paths the ``model-registry`` client uses to register, find, list and update
registered models, model versions and model artifacts, keeps them in memory and records
every request. As the real server does, it refuses a second version of one name under a
registered model, and an update replaces the custom properties it is given whole.
"""

from __future__ import annotations

import itertools
import time

from tests.rest_standin import RestStandIn

API = "/api/model_registry/v1"


def _error(code: int, message: str) -> tuple[int, dict]:
    return code, {"code": str(code), "message": message}


class KubeflowRegistryStandIn(RestStandIn):
    def __init__(self):
        self.models: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.artifacts: dict[str, dict] = {}
        self.version_artifacts: dict[str, list[str]] = {}
        self.fail_next_artifact = False  # answer 500 to the next artifact creation
        self._ids = itertools.count(1)
        super().__init__([
            ("GET", API + r"/registered_models$", lambda g, q, b: self._page(self.models)),
            ("POST", API + r"/registered_models$", self._create_model),
            ("GET", API + r"/registered_model$", self._find_model),
            ("GET", API + r"/registered_models/(?P<id>\d+)$",
             lambda g, q, b: self._get(self.models, g["id"])),
            ("PATCH", API + r"/registered_models/(?P<id>\d+)$",
             lambda g, q, b: self._update(self.models, g["id"], b)),
            ("GET", API + r"/registered_models/(?P<id>\d+)/versions$", self._model_versions),
            ("POST", API + r"/model_versions$", self._create_version),
            ("GET", API + r"/model_version$", self._find_version),
            ("GET", API + r"/model_versions/(?P<id>\d+)$",
             lambda g, q, b: self._get(self.versions, g["id"])),
            ("PATCH", API + r"/model_versions/(?P<id>\d+)$",
             lambda g, q, b: self._update(self.versions, g["id"], b)),
            ("POST", API + r"/model_versions/(?P<id>\d+)/artifacts$", self._add_artifact),
            ("GET", API + r"/model_artifact$", self._find_artifact),
            ("GET", API + r"/model_versions/(?P<id>\d+)/artifacts$",
             lambda g, q, b: self._page({i: self.artifacts[i] for i in
                                         self.version_artifacts.get(g["id"], [])})),
        ])

    def _new(self, table: dict, body: dict, **extra) -> tuple[int, dict]:
        now = str(int(time.time() * 1000))
        item = {**body, **extra, "id": str(next(self._ids)), "createTimeSinceEpoch": now,
                "lastUpdateTimeSinceEpoch": now}
        table[item["id"]] = item
        return 201, item

    @staticmethod
    def _page(table: dict) -> tuple[int, dict]:
        items = list(table.values())
        return 200, {"items": items, "size": len(items), "pageSize": len(items) or 1,
                     "nextPageToken": ""}

    @staticmethod
    def _get(table: dict, item_id: str) -> tuple[int, dict]:
        return (200, table[item_id]) if item_id in table else _error(404, "not found")

    def _update(self, table: dict, item_id: str, body: dict) -> tuple[int, dict]:
        if item_id not in table:
            return _error(404, f"no entity with id {item_id}")
        table[item_id] = {**table[item_id], **body,
                          "lastUpdateTimeSinceEpoch": str(int(time.time() * 1000))}
        return 200, table[item_id]

    def _create_model(self, g, q, body):
        if any(m["name"] == body["name"] for m in self.models.values()):
            return _error(409, f"registered model {body['name']} already exists")
        return self._new(self.models, body, state="LIVE")

    def _find_model(self, g, q, body):
        return next(((200, m) for m in self.models.values() if m["name"] == q.get("name")),
                    _error(404, "no registered model found"))

    def _model_versions(self, g, q, body):
        return self._page({i: v for i, v in self.versions.items()
                           if v["registeredModelId"] == g["id"]})

    def _create_version(self, g, q, body):
        parent = body.get("registeredModelId")
        if parent not in self.models:
            return _error(400, "registeredModelId names no registered model")
        if any(v["registeredModelId"] == parent and v["name"] == body["name"]
               for v in self.versions.values()):
            return _error(409, f"model version {body['name']} already exists")
        return self._new(self.versions, body, state="LIVE")

    def _find_version(self, g, q, body):
        return next(((200, v) for v in self.versions.values()
                     if v["name"] == q.get("name")
                     and v["registeredModelId"] == q.get("parentResourceId")),
                    _error(404, "no model version found"))

    def _find_artifact(self, g, q, body):
        return next(((200, self.artifacts[i]) for i in
                     self.version_artifacts.get(q.get("parentResourceId"), [])
                     if self.artifacts[i]["name"] == q.get("name")),
                    _error(404, "no model artifact found"))

    def _add_artifact(self, g, q, body):
        if g["id"] not in self.versions:
            return _error(404, f"no model version {g['id']}")
        if self.fail_next_artifact:
            self.fail_next_artifact = False
            return _error(500, "stand-in told to fail")
        status, artifact = self._new(self.artifacts, body)
        self.version_artifacts.setdefault(g["id"], []).append(artifact["id"])
        return 200, artifact
