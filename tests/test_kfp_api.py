"""submit and schedule through the real kfp.Client against a stand-in KFP API server.

No Kubeflow Pipelines API server can run here: ``StandInKfpApi`` is a stand-in that
speaks the v2beta1 REST paths the client uses (experiments, pipeline and version
uploads, runs, recurring runs), keeps them in memory, and records every request's body
and auth headers so the tests can assert what a real server would receive.
"""

import email.parser
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from components.common.errors import ConfigError
from pipeline import profiles
from pipeline.cron import for_kfp
from pipeline.kfp_api import KfpTarget, schedule, submit
from pipeline.pipeline import PIPELINE_NAME, compile_pipeline
from tests.gcs_emulator import free_port

API = "/apis/v2beta1"
PARAMS = {"source": "s3://b/images", "registry_uri": "s3://b/registry"}


def _uploaded_file(headers, body: bytes) -> bytes:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    [part] = [p for p in message.get_payload() if p.get_param("name", header="content-disposition")
              == "uploadfile"]
    return part.get_payload(decode=True)


def _filtered_name(query: dict) -> str | None:
    """The display name an EQUALS filter asks for (the only filter the client sends here)."""
    if "filter" not in query:
        return None
    [predicate] = json.loads(query["filter"])["predicates"]
    return predicate["stringValue"]


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
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        multipart = "multipart" in self.headers.get("Content-Type", "")
        body = {} if multipart or not raw else json.loads(raw)
        s = self.state
        s["requests"].append({"method": method, "path": url.path, "query": query, "body": body,
                              "authorization": self.headers.get("Authorization"),
                              "cookie": self.headers.get("Cookie")})
        path = url.path[len(API):]
        if path == "/healthz":
            return self._reply({"multi_user": False})
        if path == "/experiments":
            if method == "POST":
                s["experiments"].append({**body, "experiment_id": f"exp-{len(s['experiments'])}"})
                return self._reply(s["experiments"][-1])
            return self._reply({"experiments": [e for e in s["experiments"]
                                                if e["display_name"] == _filtered_name(query)]})
        if path == "/pipelines" and method == "GET":
            return self._reply({"pipelines": [p for p in s["pipelines"].values()
                                              if p["display_name"] == _filtered_name(query)]})
        if path in ("/pipelines/upload", "/pipelines/upload_version"):
            spec = _uploaded_file(self.headers, raw)
            if path == "/pipelines/upload":
                pipeline_id = f"p-{uuid.uuid4().hex[:6]}"
                s["pipelines"][pipeline_id] = {"pipeline_id": pipeline_id,
                                               "display_name": query["name"]}
            else:
                pipeline_id = query["pipelineid"]
            version = {"pipeline_id": pipeline_id, "display_name": query["name"],
                       "pipeline_version_id": f"v-{uuid.uuid4().hex[:6]}", "spec": spec}
            s["versions"].append(version)
            reply = s["pipelines"][pipeline_id] if path == "/pipelines/upload" else version
            return self._reply({k: v for k, v in reply.items() if k != "spec"})
        if path.startswith("/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[2]
            wanted = _filtered_name(query)
            return self._reply({"pipeline_versions": [
                {k: v for k, v in version.items() if k != "spec"} for version in s["versions"]
                if version["pipeline_id"] == pipeline_id
                and wanted in (None, version["display_name"])]})
        if path == "/runs" and method == "POST":
            return self._reply({**body, "run_id": f"run-{uuid.uuid4().hex[:6]}"})
        if path == "/recurringruns" and method == "GET":
            return self._reply({"recurringRuns": list(s["recurring"].values())})
        if path == "/recurringruns" and method == "POST":
            if s.get("fail_create"):
                return self._reply({"error": "stand-in told to fail", "code": 13}, 500)
            created = {**body, "recurring_run_id": f"rr-{uuid.uuid4().hex[:6]}"}
            s["recurring"][created["recurring_run_id"]] = created
            return self._reply(created)
        if path.startswith("/recurringruns/") and method == "DELETE":
            s["recurring"].pop(path.rsplit("/", 1)[-1], None)
            return self._reply({})
        return self._reply({"error": f"stand-in has no {method} {url.path}"}, 404)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")


@pytest.fixture
def kfp_api():
    StandInKfpApi.state = {"requests": [], "experiments": [], "recurring": {}, "pipelines": {},
                           "versions": []}
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), StandInKfpApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", StandInKfpApi.state
    server.shutdown()


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    file = tmp_path_factory.mktemp("profile") / "cluster.yaml"
    file.write_text("service_account: finetune-runner\npipeline_root: minio://mlpipeline/ft\n")
    return profiles.load(str(file))


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory, profile):
    return compile_pipeline(str(tmp_path_factory.mktemp("c") / "pipeline.yaml"), profile)


def requests(state, method, path):
    return [r for r in state["requests"] if r["method"] == method and r["path"] == API + path]


def test_runs_use_an_uploaded_version_the_identity_and_the_token(kfp_api, profile,
                                                                 pipeline_yaml, tmp_path):
    host, state = kfp_api
    target = KfpTarget(host, namespace="team-a", token="t0ken", cookies="session=abc")
    first = submit(target, profile, "nightly", pipeline_yaml, PIPELINE_NAME, PARAMS, "manual-1")
    assert first.startswith("run-")
    [upload] = requests(state, "POST", "/pipelines/upload")
    assert upload["query"]["name"] == PIPELINE_NAME and upload["query"]["namespace"] == "team-a"
    [version] = state["versions"]
    with open(pipeline_yaml, "rb") as handle:
        assert version["spec"] == handle.read()
    runs = [r["body"] for r in requests(state, "POST", "/runs")]
    for body in runs:
        assert body["pipeline_version_reference"] == {
            "pipeline_id": version["pipeline_id"],
            "pipeline_version_id": version["pipeline_version_id"]}
        assert body["service_account"] == "finetune-runner"
        assert body["runtime_config"]["pipeline_root"] == "minio://mlpipeline/ft"
        assert body["runtime_config"]["parameters"] == PARAMS
    assert {r["authorization"] for r in state["requests"]} == {"Bearer t0ken"}
    assert {r["cookie"] for r in state["requests"]} == {"session=abc"}
    changed = tmp_path / "changed.yaml"
    changed.write_text(open(pipeline_yaml).read() + "# reviewed\n")
    for run_name in ("m-3", "m-4"):
        submit(target, profile, "nightly", str(changed), PIPELINE_NAME, PARAMS, run_name)
    [new_version] = requests(state, "POST", "/pipelines/upload_version")
    assert new_version["query"]["pipelineid"] == version["pipeline_id"]
    assert new_version["query"]["name"].startswith(f"{PIPELINE_NAME}-")
    used = {r["body"]["pipeline_version_reference"]["pipeline_version_id"]
            for r in requests(state, "POST", "/runs")[-2:]}
    assert used == {state["versions"][-1]["pipeline_version_id"]}


def test_a_token_file_is_read_for_every_request(kfp_api, profile, pipeline_yaml, tmp_path):
    host, state = kfp_api
    token = tmp_path / "token"
    token.write_text("from-file-1")
    submit(KfpTarget(host, token_file=str(token)), profile, "e", pipeline_yaml, PIPELINE_NAME,
           PARAMS, "r")
    token.write_text("from-file-2")
    submit(KfpTarget(host, token_file=str(token)), profile, "e", pipeline_yaml, PIPELINE_NAME,
           PARAMS, "r")
    seen = [r["authorization"] for r in requests(state, "POST", "/runs")]
    assert seen == ["Bearer from-file-1", "Bearer from-file-2"]


def test_schedule_creates_the_new_one_before_deleting_the_old(kfp_api, profile, pipeline_yaml):
    host, state = kfp_api
    target = KfpTarget(host)
    first = schedule(target, profile, "nightly", pipeline_yaml, PIPELINE_NAME, PARAMS,
                     "nightly-run", "0 2 * * *")
    second = schedule(target, profile, "nightly", pipeline_yaml, PIPELINE_NAME, PARAMS,
                      "nightly-run", "0 0 3 * * *")
    bodies = [r["body"] for r in requests(state, "POST", "/recurringruns")]
    assert [b["trigger"]["cron_schedule"]["cron"] for b in bodies] == ["0 0 2 * * *",
                                                                       "0 0 3 * * *"]
    for body in bodies:
        assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True
        assert body["service_account"] == "finetune-runner"
        assert body["runtime_config"]["pipeline_root"] == "minio://mlpipeline/ft"
        assert body["pipeline_version_reference"]["pipeline_version_id"]
    order = [(r["method"], r["path"]) for r in state["requests"]
             if r["path"].startswith(API + "/recurringruns") and r["method"] != "GET"]
    assert order[-2:] == [("POST", API + "/recurringruns"),
                          ("DELETE", f"{API}/recurringruns/{first}")]
    assert list(state["recurring"]) == [second]


def test_a_failing_create_leaves_the_old_schedule_in_place(kfp_api, profile, pipeline_yaml):
    host, state = kfp_api
    old = schedule(KfpTarget(host), profile, "nightly", pipeline_yaml, PIPELINE_NAME, PARAMS,
                   "nightly-run", "0 2 * * *")
    state["fail_create"] = True
    with pytest.raises(Exception, match="500|stand-in told to fail"):
        schedule(KfpTarget(host), profile, "nightly", pipeline_yaml, PIPELINE_NAME, PARAMS,
                 "nightly-run", "0 3 * * *")
    assert list(state["recurring"]) == [old]
    assert not requests(state, "DELETE", f"/recurringruns/{old}")


@pytest.mark.parametrize("cron,expected", [("0 0 2 * * *", "0 0 2 * * *"),
                                           ("30 2 * * 1-5", "0 30 2 * * 1-5")])
def test_cron_translation(cron, expected):
    assert for_kfp(cron) == expected


def test_a_cron_that_is_neither_5_nor_6_fields_is_refused():
    with pytest.raises(ConfigError, match="6 fields"):
        for_kfp("daily")
    with pytest.raises(ConfigError, match="no TZ= prefix"):
        for_kfp("TZ=Europe/Paris 0 2 * * *")


def test_cli_names_what_is_missing(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    runner = CliRunner()
    no_host = runner.invoke(main, ["submit", "--package-file", "p.yaml"])
    assert no_host.exit_code == 2 and "--host is required for the 'kubeflow' profile" in \
        no_host.output
    vertex = runner.invoke(main, ["schedule", "--platform", "vertex", "--cron", "0 2 * * *",
                                  "--package-file", "p.yaml", "--region", "us-central1"])
    assert vertex.exit_code == 2 and "project is empty" in vertex.output


@pytest.mark.parametrize("host,allowed", [
    ("http://kubeflow.example.com/pipeline", False), ("https://kubeflow.example.com", True),
    ("http://127.0.0.1:8888", True), ("http://localhost:8888", True)])
def test_a_token_over_plain_http_to_another_machine_is_refused_unless_allowed(host, allowed):
    """Credentials in plain text cross only this machine's loopback, unless asked for."""
    from components.common.errors import ConfigError

    for credentials in (dict(token="t0ken"), dict(cookies="session=abc")):
        target = KfpTarget(host, **credentials)
        if allowed:
            target.check_transport()
        else:
            with pytest.raises(ConfigError, match="--allow-http-credentials"):
                target.check_transport()
            KfpTarget(host, allow_http_credentials=True, **credentials).check_transport()
    KfpTarget(host).check_transport()  # no credentials, nothing to leak


class Refusing(BaseHTTPRequestHandler):
    """Stands in for a KFP API behind an auth proxy that refuses this caller."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        body = b'{"error": "missing or invalid token"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


def test_a_refusing_or_unreachable_api_is_one_line_naming_the_fix(profile, pipeline_yaml):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ConfigError, match="answered 401 .*valid token") as err:
            submit(KfpTarget(host, token="expired"), profile, "e", pipeline_yaml,
                   PIPELINE_NAME, PARAMS, "r")
        assert "\n" not in str(err.value)
    finally:
        server.shutdown()
    with pytest.raises(ConfigError, match="unreachable .*check the address") as err:
        schedule(KfpTarget(f"http://127.0.0.1:{free_port()}"), profile, "e", pipeline_yaml,
                 PIPELINE_NAME, PARAMS, "nightly", "0 2 * * *")
    assert "\n" not in str(err.value)
