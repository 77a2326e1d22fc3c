"""submit and schedule through the real kfp.Client against a stand-in KFP API server.

No Kubeflow Pipelines API server can run here: ``StandInKfpApi`` is a stand-in that
speaks the v2beta1 REST paths the client uses, keeps experiments and recurring runs in
memory, and records every request body so the tests can assert what would be sent.
"""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from components.common.errors import ConfigError
from pipeline.kfp_api import schedule, submit, to_kfp_cron
from pipeline.pipeline import compile_pipeline
from tests.gcs_emulator import free_port

API = "/apis/v2beta1"


class StandInKfpApi(BaseHTTPRequestHandler):
    state: dict = {}

    def log_message(self, *args):
        pass

    def _reply(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        self.state["requests"].append({"method": method, "path": url.path, "query": url.query,
                                       "body": body})
        experiments, schedules = self.state["experiments"], self.state["recurring"]
        if url.path == f"{API}/healthz":
            return self._reply({"multi_user": False})
        if url.path == f"{API}/experiments" and method == "GET":
            return self._reply({"experiments": [e for e in experiments
                                                if e["display_name"] in _unquote(url.query)]})
        if url.path == f"{API}/experiments" and method == "POST":
            experiment = {**body, "experiment_id": f"exp-{len(experiments) + 1}"}
            experiments.append(experiment)
            return self._reply(experiment)
        if url.path == f"{API}/runs" and method == "POST":
            return self._reply({**body, "run_id": f"run-{uuid.uuid4().hex[:6]}"})
        if url.path == f"{API}/recurringruns" and method == "GET":
            return self._reply({"recurringRuns": list(schedules.values())})
        if url.path == f"{API}/recurringruns" and method == "POST":
            created = {**body, "recurring_run_id": f"rr-{uuid.uuid4().hex[:6]}"}
            schedules[created["recurring_run_id"]] = created
            return self._reply(created)
        if url.path.startswith(f"{API}/recurringruns/") and method == "DELETE":
            schedules.pop(url.path.rsplit("/", 1)[-1], None)
            return self._reply({})
        return self._reply({"error": f"stand-in has no {method} {url.path}"}, 404)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")


def _unquote(query: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(query)


@pytest.fixture
def kfp_api():
    StandInKfpApi.state = {"requests": [], "experiments": [], "recurring": {}}
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), StandInKfpApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", StandInKfpApi.state
    server.shutdown()


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory):
    return compile_pipeline(str(tmp_path_factory.mktemp("c") / "pipeline.yaml"))


def posted(state, path):
    return [r["body"] for r in state["requests"] if r["method"] == "POST" and r["path"] == path]


def test_submit_sends_the_compiled_spec_and_parameters(kfp_api, pipeline_yaml):
    host, state = kfp_api
    run_id = submit(host, "", "nightly", pipeline_yaml, {"source": "gs://b/images",
                                                         "registry_uri": "gs://b/registry"},
                    "manual-1")
    assert run_id.startswith("run-")
    (body,) = posted(state, f"{API}/runs")
    assert body["display_name"] == "manual-1"
    assert body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "resnet50-finetune"
    executors = body["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"][
        "deploymentSpec"]["executors"]
    assert executors["exec-train"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert body["runtime_config"]["parameters"]["source"] == "gs://b/images"
    assert body["experiment_id"] == "exp-1"


def test_schedule_creates_then_replaces(kfp_api, pipeline_yaml):
    host, state = kfp_api
    params = {"source": "gs://b/images", "registry_uri": "gs://b/registry"}
    first = schedule(host, "", "nightly", pipeline_yaml, params, "nightly-run", "0 2 * * *")
    second = schedule(host, "", "nightly", pipeline_yaml, params, "nightly-run", "0 0 3 * * *")
    bodies = posted(state, f"{API}/recurringruns")
    assert bodies[0]["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert bodies[1]["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    for body in bodies:
        assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True
        assert body["runtime_config"]["parameters"]["registry_uri"] == "gs://b/registry"
    deleted = [r["path"] for r in state["requests"] if r["method"] == "DELETE"]
    assert deleted == [f"{API}/recurringruns/{first}"]
    assert list(state["recurring"]) == [second]


@pytest.mark.parametrize("cron,expected", [("0 0 2 * * *", "0 0 2 * * *"),
                                           ("30 2 * * 1-5", "0 30 2 * * 1-5")])
def test_cron_translation(cron, expected):
    assert to_kfp_cron(cron) == expected


def test_a_cron_that_is_neither_5_nor_6_fields_is_refused():
    with pytest.raises(ConfigError, match="6 fields"):
        to_kfp_cron("daily")
