"""The finetune command as a user types it: one-line errors, exit codes, JSON output."""

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from tests.saved_model_stand_in import write_stand_in


@pytest.fixture
def cli():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def test_bad_input_is_one_line_and_exit_code_2(cli, tmp_path):
    result = cli("prepare-data", "--source", str(tmp_path / "missing"), "--output",
                 str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: --source")
    result = cli("train", "--examples", "x", "--output", "y", "--clip-threshold", "0")
    assert result.exit_code == 2 and "--clip-threshold 0.0" in result.output


def test_registry_commands_print_json(cli, tmp_path):
    sm = write_stand_in(tmp_path / "sm", "stand-in graph")
    reg = str(tmp_path / "reg")
    common = ["--registry", reg, "--model-name", "m"]
    assert cli("registry", "promote", *common, "--saved-model", str(sm), "--run-id", "a"
               ).exit_code == 0
    write_stand_in(sm, "retrained stand-in graph")
    cli("registry", "promote", *common, "--saved-model", str(sm), "--run-id", "b")
    listed = json.loads(cli("registry", "list", *common, "--json").output)
    assert listed["production"] == 2 and [v["version"] for v in listed["versions"]] == [1, 2]
    assert json.loads(cli("registry", "rollback", *common).output)["version"] == 1
    assert json.loads(cli("registry", "show", *common, "production").output)["version"] == 1
    result = cli("registry", "show", *common, "staging")
    assert result.exit_code == 2 and "alias 'staging'" in result.output
    from components.promote.registry import Registry

    Registry(reg, "m").log_run("night-1", "lineage", {"decision": "unchanged",
                                                      "data_fingerprint": "abc",
                                                      "production_version": 2,
                                                      "reasons": ["same"]})
    Registry(reg, "m").log_run("night-1", "final", {"status": "SUCCEEDED"})
    runs = json.loads(cli("registry", "runs", *common, "--json").output)["runs"]
    assert [(r["run_id"], r["decision"]) for r in runs] == [("night-1", "unchanged")]
    line = cli("registry", "runs", *common).output
    assert "night-1  SUCCEEDED  unchanged  production v2" in line


def test_compile_and_cron_refusal(cli, tmp_path):
    out = tmp_path / "p.yaml"
    assert cli("compile", "--output", str(out), "--image", "example.com/img@sha256:abc"
               ).exit_code == 0
    assert "example.com/img@sha256:abc" in out.read_text()
    result = cli("schedule", "--host", "http://127.0.0.1:9", "--cron", "nightly",
                 "--pipeline", str(out))
    assert result.exit_code == 2 and "6 fields" in result.output


BAD = "hdfs://cluster/images"
URI_ARGUMENTS = [
    ["demo-data", BAD],
    ["prepare-data", "--source", BAD, "--output", "out"],
    ["prepare-data", "--source", "src", "--output", BAD],
    ["prepare-data", "--source", "src", "--output", "out", "--split-state", BAD],
    ["train", "--examples", BAD, "--output", "out"],
    ["train", "--examples", "ex", "--output", BAD],
    ["train", "--examples", "ex", "--output", "out", "--backup-dir", BAD],
    ["train", "--examples", "ex", "--output", "out", "--weights", BAD],
    ["export", "--model", BAD, "--examples", "ex", "--output", "out"],
    ["export", "--model", "m", "--examples", BAD, "--output", "out"],
    ["export", "--model", "m", "--examples", "ex", "--output", BAD],
    ["evaluate", "--candidate", BAD, "--examples", "ex", "--output", "out"],
    ["evaluate", "--candidate", "c", "--examples", "ex", "--output", "out", "--baseline", BAD],
    ["evaluate", "--candidate", "c", "--examples", "ex", "--output", "out", "--registry", BAD],
    ["registry", "list", "--registry", BAD, "--model-name", "m"],
    ["registry", "show", "--registry", BAD, "--model-name", "m"],
    ["registry", "promote", "--registry", BAD, "--model-name", "m", "--version", "1"],
    ["registry", "promote", "--registry", "r", "--model-name", "m", "--saved-model", BAD],
    ["registry", "rollback", "--registry", BAD, "--model-name", "m"],
    ["run-local", "--data", BAD],
    ["run-local", "--registry", BAD],
    ["run-local", "--workdir", BAD],
    ["submit", "--host", "http://127.0.0.1:9", "--pipeline", "p.yaml", "--param",
     f"source={BAD}"],
    ["schedule", "--host", "http://127.0.0.1:9", "--pipeline", "p.yaml", "--cron", "0 2 * * *",
     "--param", f"registry_uri={BAD}"],
]


@pytest.mark.parametrize("args", URI_ARGUMENTS, ids=lambda a: "-".join(a[:2]))
def test_every_uri_argument_refuses_an_unknown_scheme(cli, args, tmp_path, monkeypatch):
    """Never a local path: no folder named 'hdfs:' appears, nothing is contacted."""
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0
    assert f"'{BAD}': unsupported scheme 'hdfs:'" in result.output
    assert list(tmp_path.iterdir()) == []


SECRET_URI = "mlflow+http://alice:s3cr3t@mlflow.example.com:5000"


@pytest.mark.parametrize("args", [
    ["run-local", "--registry", SECRET_URI],
    ["registry", "list", "--registry", SECRET_URI, "--model-name", "m"],
    ["submit", "--host", "http://127.0.0.1:9", "--pipeline", "p.yaml", "--param",
     f"registry_uri={SECRET_URI}"],
], ids=lambda a: "-".join(a[:2]))
def test_credentials_in_a_registry_uri_are_refused_without_being_echoed(cli, args, tmp_path,
                                                                        monkeypatch):
    """A run stores, logs and reports its parameters: a password in the URI is refused
    before any work, and the refusal itself shows the URI without it."""
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "s3cr3t" not in result.output and "alice" not in result.output
    assert "***@mlflow.example.com:5000" in result.output
    assert "MLFLOW_TRACKING_PASSWORD" in result.output
    assert list(tmp_path.iterdir()) == []
