"""A stand-in for the Vertex AI REST API (v1), for the Vertex SDK's own client code.

Vertex AI cannot run here. This server answers the few paths that
``PipelineJob.submit``, the ``PipelineJobSchedule`` calls and the Model Registry calls
(``Model.upload``, ``Model.list``, ``ModelRegistry``'s versions and aliases) use, keeps
jobs, schedules and models in memory, and records every request. As Vertex does, it
gives a new model's first version the ``default`` alias and moves an alias merged onto
a version away from the version that held it. ``PipelineJob.submit`` also checks the
pipeline root's bucket through the Cloud Storage JSON API; with ``STORAGE_EMULATOR_HOST``
pointing here, that check is answered too (bucket missing -> created), so nothing leaves
the machine. A ``CustomJob`` is checked against the schema written from the v1 types; its
replicas are processes of this machine running its pools'
command with the ``TF_CONFIG`` Vertex gives them (pool 0 ``chief``, pool 1 ``worker``),
every address a loopback port; its state follows them, and a cancelled job is
``CANCELLING`` when first read again.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import jsonschema
import yaml

from tests.rest_standin import RestStandIn
from tests.worker_nodes import Node, loopback_tf_configs

_PARENT = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
_MODEL = r"/models/(?P<id>[^/:@]+)"
NOW = "2026-11-27T00:00:00Z"
CUSTOM_JOB_SCHEMA = Path(__file__).parent / "schemas" / "vertex-v1-customjob.yaml"
NOT_FOUND = (404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})


class VertexStandIn(RestStandIn):
    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self.fail_schedule_create = False
        self.models: dict[str, list[dict]] = {}  # model name -> its versions
        self.custom_jobs: dict[str, dict] = {}  # name -> {"body", "nodes", "cancelled"}
        self.custom_job_schema = yaml.safe_load(CUSTOM_JOB_SCHEMA.read_text())
        self._ids = itertools.count(1000)
        routes = [
            ("POST", _PARENT + r"/pipelineJobs$", self._create_job),
            ("GET", _PARENT + r"/pipelineJobs/(?P<id>[^/:]+)$", self._get_job),
            ("POST", _PARENT + r"/customJobs$", self._create_custom_job),
            ("GET", _PARENT + r"/customJobs$", self._list_custom_jobs),
            ("GET", _PARENT + r"/customJobs/(?P<id>[^/:]+)$", self._get_custom_job),
            ("POST", _PARENT + r"/customJobs/(?P<id>[^/:]+):cancel$", self._cancel_custom_job),
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

    def stop(self) -> None:
        for job in self.custom_jobs.values():
            for node in job["nodes"]:
                node.stop()
        super().stop()

    def _create_custom_job(self, g, query, body):
        try:
            jsonschema.validate(body, self.custom_job_schema)
        except jsonschema.ValidationError as err:
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                   "message": f"Invalid CustomJob: {err.message}"}}
        pools = body["jobSpec"]["workerPoolSpecs"]
        kinds = [kind for kind, pool in zip(("chief", "worker"), pools, strict=False)
                 for _ in range(int(pool.get("replicaCount", 1)))]
        configs = loopback_tf_configs(kinds)
        nodes = []
        for config in configs:
            container = pools[0 if config["task"]["type"] == "chief" else 1]["containerSpec"]
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            nodes.append(Node(container["command"], {**env, "TF_CONFIG": json.dumps(
                {**config, "environment": "cloud", "job": body["jobSpec"]})}))
        name = f"{g['parent']}/customJobs/{next(self._ids)}"
        self.custom_jobs[name] = {"body": {**body, "name": name}, "nodes": nodes,
                                  "cancelled": 0}
        return 200, self._custom_job(name)

    def _custom_job(self, name: str) -> dict:
        job = self.custom_jobs[name]
        codes = [node.process.poll() for node in job["nodes"]]
        failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
        if job["cancelled"]:  # Vertex cancels asynchronously: CANCELLING, then CANCELLED
            state = "JOB_STATE_CANCELLING" if job["cancelled"] == 1 else "JOB_STATE_CANCELLED"
            job["cancelled"] += 1
        elif failed is not None:
            for node in job["nodes"]:
                node.stop()
            state = "JOB_STATE_FAILED"
        else:
            state = "JOB_STATE_SUCCEEDED" if all(c == 0 for c in codes) else "JOB_STATE_RUNNING"
        out = {**job["body"], "state": state, "createTime": NOW}
        if state == "JOB_STATE_FAILED":
            replica = "workerpool0-0" if failed == 0 else f"workerpool1-{failed - 1}"
            out["error"] = {"code": 3, "message": f"The replica {replica} exited with a "
                                                  f"non-zero status of {codes[failed]}."}
        return out

    def _get_custom_job(self, g, query, body):
        name = f"{g['parent']}/customJobs/{g['id']}"
        return (200, self._custom_job(name)) if name in self.custom_jobs else NOT_FOUND

    def _list_custom_jobs(self, g, query, body):
        wanted = re.fullmatch(r'labels\.([\w-]+)="(.*)"', query.get("filter", ""))
        return 200, {"customJobs": [
            self._custom_job(name) for name, job in self.custom_jobs.items()
            if name.startswith(g["parent"] + "/") and (
                not wanted or job["body"].get("labels", {}).get(wanted.group(1))
                == wanted.group(2))]}

    def _cancel_custom_job(self, g, query, body):
        job = self.custom_jobs.get(f"{g['parent']}/customJobs/{g['id']}")
        if not job:
            return NOT_FOUND
        job["cancelled"] = 1
        for node in job["nodes"]:
            node.stop()
        return 200, {}

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
