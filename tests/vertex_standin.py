"""A stand-in for the Vertex AI REST API (v1), for the Vertex SDK's own client code.

Vertex AI cannot run here. This server answers the few paths that
``PipelineJob.submit``, the ``PipelineJobSchedule`` calls and the Model Registry calls
(``Model.upload``, ``Model.list``, ``ModelRegistry``'s versions and aliases) use, keeps
jobs, schedules and models in memory, and records every request. As Vertex does, it
gives a new model's first version the ``default`` alias and moves an alias merged onto
a version away from the version that held it. ``PipelineJob.submit`` also checks the
pipeline root's bucket through the Cloud Storage JSON API; with ``STORAGE_EMULATOR_HOST``
pointing here, that check is answered too (bucket missing -> created), so nothing leaves
the machine.
"""

from __future__ import annotations

import itertools
import re

from tests.rest_standin import RestStandIn

_PARENT = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
_MODEL = r"/models/(?P<id>[^/:@]+)"
NOW = "2026-11-27T00:00:00Z"
NOT_FOUND = (404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})


class VertexStandIn(RestStandIn):
    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.fail_schedule_create = False
        self.models: dict[str, list[dict]] = {}  # model name -> its versions
        self._ids = itertools.count(1000)
        routes = [
            ("POST", _PARENT + r"/pipelineJobs$", self._create_job),
            ("GET", _PARENT + r"/pipelineJobs/(?P<id>[^/:]+)$", self._get_job),
            ("POST", _PARENT + r"/schedules$", self._create_schedule),
            ("GET", _PARENT + r"/schedules$", self._list_schedules),
            ("GET", _PARENT + r"/schedules/(?P<id>[^/:]+)$", self._get_schedule),
            ("DELETE", _PARENT + r"/schedules/(?P<id>[^/:]+)$", self._delete_schedule),
            ("POST", _PARENT + r"/models:upload$", self._upload_model),
            ("GET", _PARENT + r"/models$", self._list_models),
            ("GET", _PARENT + _MODEL + r":listVersions$", self._list_versions),
            ("POST", _PARENT + _MODEL + r"@(?P<ver>[^/:]+):mergeVersionAliases$",
             self._merge_aliases),
            ("GET", _PARENT + _MODEL + r"(@(?P<ver>[^/:]+))?$", self._get_model),
            ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)$", lambda g, q, b: NOT_FOUND),
            ("POST", r"/storage/v1/b$", lambda g, q, b: (200, {**(b or {}),
                                                               "kind": "storage#bucket"})),
            ("GET", r"/storage/v1/b/[^/]+/iam$", lambda g, q, b: (200, {"bindings": []})),
            ("PUT", r"/storage/v1/b/[^/]+/iam$", lambda g, q, b: (200, b or {})),
        ]
        super().__init__(routes)

    def posted(self, suffix: str) -> list[dict]:
        return self.sent("POST", suffix)

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

    def _version(self, g) -> dict | None:
        """The version ``g['ver']`` (an id or an alias; ``default`` if none) of a model."""
        wanted = g.get("ver") or "default"
        return next((v for v in self.models.get(f"{g['parent']}/models/{g['id']}", [])
                     if wanted == v["versionId"] or wanted in v["versionAliases"]), None)

    def _upload_model(self, g, query, body):
        name = body.get("parentModel") or f"{g['parent']}/models/{next(self._ids)}"
        if body.get("parentModel") and name not in self.models:
            return NOT_FOUND
        versions = self.models.setdefault(name, [])
        version = {**body["model"], "name": name, "versionId": str(len(versions) + 1),
                   "versionAliases": [], "versionCreateTime": NOW, "versionUpdateTime": NOW,
                   "createTime": NOW, "updateTime": NOW}
        versions.append(version)
        self._move_aliases(name, version, body["model"].get("versionAliases", [])
                           + ([] if len(versions) > 1 else ["default"]))
        return 200, {"name": f"{g['parent']}/operations/{next(self._ids)}", "done": True,
                     "response": {"@type": "type.googleapis.com/google.cloud.aiplatform.v1."
                                           "UploadModelResponse",
                                  "model": name, "modelVersionId": version["versionId"]}}

    def _move_aliases(self, name: str, version: dict, aliases: list[str]) -> None:
        for alias in aliases:
            if alias.startswith("-"):
                version["versionAliases"].remove(alias[1:])
                continue
            for other in self.models[name]:
                if alias in other["versionAliases"]:
                    other["versionAliases"].remove(alias)
            version["versionAliases"].append(alias)

    def _get_model(self, g, query, body):
        version = self._version(g)
        return (200, version) if version else NOT_FOUND

    def _list_models(self, g, query, body):
        wanted = re.fullmatch(r'display_name="(.*)"', query.get("filter", ""))
        defaults = [self._version({"parent": g["parent"], "id": name.rsplit("/", 1)[-1]})
                    for name in self.models if name.startswith(g["parent"] + "/")]
        return 200, {"models": [m for m in defaults
                                if not wanted or m["displayName"] == wanted.group(1)]}

    def _list_versions(self, g, query, body):
        versions = self.models.get(f"{g['parent']}/models/{g['id']}")
        return (200, {"models": versions}) if versions is not None else NOT_FOUND

    def _merge_aliases(self, g, query, body):
        version = self._version(g)
        if version is None:
            return NOT_FOUND
        self._move_aliases(version["name"], version, body["versionAliases"])
        return 200, version
