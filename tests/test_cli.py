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
    from components.registry.storage_registry import StorageRegistry

    StorageRegistry(reg, "m").log_run("night-1", "lineage", {"decision": "unchanged",
                                                      "data_fingerprint": "abc",
                                                      "production_version": 2,
                                                      "reasons": ["same"]})
    StorageRegistry(reg, "m").log_run("night-1", "final", {"status": "SUCCEEDED"})
    missing = cli("registry", "list", "--registry", reg, "--model-name", "mm")
    assert missing.exit_code == 2 and missing.output == (
        f"error: --model-name mm: no such model in {reg}; models there: m\n")
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
                 "--package-file", str(out))
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
    ["submit", "--host", "http://127.0.0.1:9", "--package-file", "p.yaml", "--param",
     f"source={BAD}"],
    ["schedule", "--host", "http://127.0.0.1:9", "--package-file", "p.yaml", "--cron", "0 2 * * *",
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
    ["submit", "--host", "http://127.0.0.1:9", "--package-file", "p.yaml", "--param",
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


def test_version_short_help_and_one_meaning_per_flag(cli):
    assert cli("--version").output.startswith("finetune, version ")
    assert cli("-h").output.startswith("Usage: main [OPTIONS] COMMAND")  # "finetune" installed
    help_text = cli("run-local", "-h").output
    assert "--stream" in help_text and "--json" in help_text and "--head-epochs" in help_text
    assert "\n  --verbose" not in help_text, "-v before the command is the debug flag"


@pytest.mark.parametrize("args,message", [
    (["--bn-policy", "frozn"], "'frozn' is not one of 'frozen', 'bn_only', 'full'"),
    (["--epochs", "two"], "'two' is not a valid integer"),
    (["--epochs", "2"], "--head-epochs 2 with --epochs 2"),
    (["--clip-threshold", "0"], "--clip-threshold 0.0"),
])
def test_run_local_options_are_checked_before_any_work(cli, tmp_path, args, message):
    """Generated from the settings: choices, types and the config's own checks, before the
    work folder is even made."""
    result = cli("run-local", "--workdir", str(tmp_path / "w"), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "w").exists()


def test_the_verdict_is_short_and_says_why_and_what_next():
    from pipeline.verdict import MAX_LINES, verdict

    summary = {"gate": {"decision": "reject", "reasons": ["non_inferiority failed: ...",
                                                          "mcnemar failed: ..."],
                        "next_step": "grow the test split to 449 images"},
               "production_version": 1, "registry": "/r/demo", "report": "/w/report.html",
               "logs": "/w/logs", "artifacts": {"saved_model": "/a/sm", "trained_model": "/a/tm"},
               "data": {"accepted": 120, "skipped": 2, "splits": {"train": 96, "test": 12}},
               "test_accuracy": {"candidate": 0.91666, "production": 1.0}, "test_size": 12,
               "wall_seconds": 301.4}
    lines = verdict(summary)
    assert len(lines) <= MAX_LINES and lines[0] == "REJECTED: production stays v1"
    assert lines[1] == "why:   non_inferiority failed: ... (+1 more in the report)"
    assert lines[2] == "next:  grow the test split to 449 images"
    assert "candidate 0.917, production 1.000" in "\n".join(lines)
    assert "tensorboard: tensorboard --logdir /a/tm/tensorboard" in lines
    first = verdict({"gate": {"decision": "promote", "reasons": []}, "production_version": None})
    assert first[0] == "PROMOTED: version none (no version yet) is production"


def test_placeholder_image_accelerators_and_cron_fields_are_refused_by_name(cli, tmp_path):
    out = str(tmp_path / "p.yaml")
    result = cli("compile", "--output", out)
    assert result.exit_code == 2 and "placeholder, not a published image" in result.output
    result = cli("compile", "--platform", "gke", "--accelerator", "NVIDIA_H999",
                 "--image", "r.example/i@sha256:abc", "--output", out)
    assert result.exit_code == 2 and "'NVIDIA_H999' is no GPU type" in result.output
    for cron, message in (("0 25 * * *", "hour '25' is out of range; use 0-23"),
                          ("0 2 * 13 *", "month '13' is out of range; use 1-12 or JAN-DEC"),
                          ("*/0 * * * *", "minute step '0'")):
        result = cli("schedule", "--host", "http://127.0.0.1:9", "--cron", cron,
                     "--package-file", out)
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("args, message", [
    (["run-local", "--bn-policy", "frozn"], "'frozn' is not one of 'frozen', 'bn_only', 'full'"),
    (["run-local", "--pipeline", "ablation", "--clips", "none,bogus"],
     "'none,bogus': give distinct comma-separated values from none, value, norm"),
    (["run-local", "--pipeline", "ablation", "--seeds", "11"], "--seeds 11: use 1 to 10"),
    (["run-local", "--epochs", "two"], "'two' is not a valid integer"),
    (["gate", "characteristics", "--test-size", "10", "--mcnemar-alpha", "2"],
     "mcnemar_alpha=2.0: use 0 < alpha < 1, or -1 for off"),
])
def test_generated_options_refuse_a_bad_value_before_any_work(cli, args, message, tmp_path,
                                                              monkeypatch):
    """run-local's and gate characteristics' options come from the configs (TrainConfig,
    AblationGrid, GateConfig): their choices and types are checked before anything runs."""
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []
