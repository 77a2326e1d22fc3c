"""Lineage: the same data, settings and code as production is `unchanged`; anything else,
or `force`, retrains. The run log's final record cleans up a failed run's backup."""

import pytest

from components.lineage.lineage import Lineage, code_version, compare
from components.lineage.run import NO_VERSION, check, record_run, resolve_production
from components.registry.storage_registry import StorageRegistry
from tests.saved_model_stand_in import write_stand_in

SETTINGS = {"image_size": 64, "epochs": 4, "train_extra": {"bn_momentum": 0.9}}


def test_code_version_is_the_package_and_a_source_hash():
    version = code_version()
    assert version == code_version() and "+" in version
    assert len(version.rsplit("+", 1)[1]) == 12


@pytest.mark.parametrize("change,differs", [
    ({}, []),
    ({"data_fingerprint": "other"}, ["data"]),
    ({"settings": {**SETTINGS, "epochs": 5}}, ["settings"]),
    ({"code": "0.1.0+ffffffffffff"}, ["code"]),
])
def test_compare_names_what_differs(change, differs):
    production = Lineage("fp", SETTINGS, "0.1.0+abcdefabcdef")
    current = Lineage(**{**production.__dict__, **change})
    result = compare(current, production.to_dict(), 3, force=False)
    assert result.differs == differs
    assert result.decision == ("changed" if differs else "unchanged")
    assert (current.key == production.key) == (not differs)
    forced = compare(current, production.to_dict(), 3, force=True)
    assert forced.decision == "changed" and "force is set" in forced.reasons[0]


def test_without_production_everything_is_changed():
    result = compare(Lineage("fp", SETTINGS, "c"), None, None, force=False)
    assert result.decision == "changed" and "no production model" in result.reasons[0]


def production_with(tmp_path, data_fingerprint: str) -> tuple[str, StorageRegistry]:
    """A registry whose production v1 was made from ``data_fingerprint`` with SETTINGS and
    this code (the SavedModel is a stand-in: the registry only moves files)."""
    registry = str(tmp_path / "registry")
    reg = StorageRegistry(registry, "m")
    model = write_stand_in(tmp_path / "sm")
    lineage = Lineage(data_fingerprint, SETTINGS, code_version()).to_dict()
    reg.promote(reg.register(str(model), "r1", {"lineage": lineage})["version"])
    return registry, reg


def test_check_reads_production_lineage_from_the_registry_and_logs(tmp_path):
    registry, reg = production_with(tmp_path, "fp")
    uri, version = resolve_production(registry, "m")
    assert (uri, version) == (reg.version_uri(1), 1)
    assert check(registry, "m", "r2", "fp", version, SETTINGS, False)["decision"] == "unchanged"
    assert check(registry, "m", "r3", "fp2", version, SETTINGS, False)["decision"] == "changed"
    assert resolve_production(str(tmp_path / "empty"), "m") == ("", NO_VERSION)
    assert [r["decision"] for r in reg.runs()] == ["unchanged", "changed"]


def test_a_failed_run_leaves_no_backup_and_a_succeeded_one_keeps_others(tmp_path):
    registry, backup = str(tmp_path / "registry"), tmp_path / "backup"
    for run_id in ("ok", "failed", "other"):
        (backup / run_id).mkdir(parents=True)
        (backup / run_id / "history.jsonl").write_text("{}\n")
    record_run(registry, "m", "failed", "FAILED", "train failed", str(backup))
    record_run(registry, "m", "ok", "SUCCEEDED", "", str(backup))
    assert sorted(p.name for p in backup.iterdir()) == ["ok", "other"]
    assert [(r["run_id"], r["status"]) for r in StorageRegistry(registry, "m").runs()] == [
        ("failed", "FAILED"), ("ok", "SUCCEEDED")]


def test_a_run_killed_before_its_exit_handler_is_recorded_by_a_later_run(tmp_path):
    """The platform ended run 'killed' (its exit handler never ran); 'recent' is still
    going. Two days later the next run's lineage check records the first as KILLED."""
    import time

    from components.lineage.run import ABANDONED_AFTER_S, close_abandoned_runs

    reg = StorageRegistry(str(tmp_path / "registry"), "m")
    reg.log_run("killed", "lineage", {"decision": "changed", "reasons": []})
    later = time.time() + ABANDONED_AFTER_S + 60
    reg.log_run("recent", "lineage", {"decision": "changed", "reasons": []})
    assert close_abandoned_runs(reg, "next", time.time()) == []
    assert close_abandoned_runs(reg, "recent", later) == ["killed"]
    runs = {r["run_id"]: r for r in reg.runs()}
    assert runs["killed"]["status"] == "KILLED" and "exit handler" in runs["killed"]["error"]
    assert runs["recent"]["status"] == "running"
    assert close_abandoned_runs(reg, "next", later) == ["recent"], "only once each"
    assert close_abandoned_runs(reg, "next", later) == []


def test_a_lineage_already_judged_against_this_production_is_unchanged(tmp_path):
    """A candidate the gate rejected is not retrained every night on the same inputs."""
    registry, reg = production_with(tmp_path, "old data")
    first = check(registry, "m", "r2", "new data", 1, SETTINGS, False)
    assert first["decision"] == "changed"
    reg.log_run("r2", "evaluate", {"decision": "reject", "reasons": ["worse"]})
    reg.log_run("r2", "final", {"status": "SUCCEEDED"})
    again = check(registry, "m", "r3", "new data", 1, SETTINGS, False)
    assert again["decision"] == "unchanged"
    assert "run r2 already trained and evaluated" in again["reasons"][0]
    assert "(gate: reject)" in again["reasons"][0]
    assert check(registry, "m", "r4", "new data", 1, SETTINGS, True)["decision"] == "changed"
    assert check(registry, "m", "r5", "newer data", 1, SETTINGS, False)["decision"] == "changed"


NAMED = {"source": "data", "train_fraction": 0.8, "val_fraction": 0.1, "test_fraction": 0.1,
         "image_size": 64, "bn_policy": "frozen", "clip": "global_norm", "clip_threshold": 1.0,
         "epochs": 4, "batch_size": 16, "learning_rate": 1e-3, "weights": "none", "seed": 0,
         "min_accuracy": 0.5, "max_ece": -1.0, "non_inferiority_margin": 0.035,
         "gate_confidence": 0.95, "mcnemar_alpha": 0.05, "max_class_recall_drop": 0.1}


def _resolve(train="{}", prepare="{}", gate="{}", **named):
    from components.lineage.resolve import resolve

    return resolve({**NAMED, **named}, {"train_extra_json": train, "prepare_extra_json": prepare,
                                        "gate_extra_json": gate})


@pytest.mark.parametrize("extras, message", [
    (("{}", "{}", '{"min_improvment": 0.01}'), "gate_extra_json sets .'min_improvment'."),
    (('{"head_epochs": 4, "fine_tune_blocks": 2}', "{}", "{}"), "--head-epochs 4 with --epochs 4"),
    (("{}", '{"augmentation": {"zoom_fraction": 2}}', "{}"), "zoom_fraction=2"),
    (("{}", "{}", '{"class_alpha": 0}'), "class_alpha=0"),
])
def test_every_steps_settings_are_checked_before_any_step_runs(extras, message):
    from components.common.errors import ConfigError
    _resolve("{}", '{"min_side": 64}', '{"min_improvement": 0.01}')
    with pytest.raises(ConfigError, match=message):
        _resolve(*extras)


def _key(resolved: dict) -> str:
    from components.lineage.resolve import lineage_settings

    return Lineage("fp", lineage_settings(resolved["prepare"], resolved["train"]), "c").key


def test_equal_settings_are_one_lineage_however_they_are_spelled():
    """The default written out, -1 for the mode's own threshold and the mode's threshold
    itself all train the same model: one lineage, so production is not retrained."""
    base = _key(_resolve(clip="autoclip", clip_threshold=-1.0))
    assert _key(_resolve('{"dropout": 0.2}', clip="autoclip", clip_threshold=-1.0)) == base
    assert _key(_resolve(clip="autoclip", clip_threshold=95.0)) == base
    assert _key(_resolve('{"steps_per_execution": 4}', '{"preview_images": 2}',
                         clip="autoclip", clip_threshold=-1.0)) == base, "speed and previews"
    assert _key(_resolve('{"dropout": 0.3}', clip="autoclip", clip_threshold=-1.0)) != base


def _other_value(cls, name, value, context: dict):
    """A valid value of setting ``cls.name`` (with the ``context`` settings) whose
    resolved config differs from ``value``'s (None: none found)."""
    from dataclasses import replace

    from components.common.errors import ConfigError
    from components.common.settings import build, default, flatten, settings

    choices = settings(cls)[name].metadata.get("choices", ())
    if hasattr(value, "to_dict"):
        first = next(iter(value.to_dict()))
        inner = _other_value(type(value), first, getattr(value, first), {})
        candidates = [replace(value, **{first: inner})]
    elif choices:
        candidates = [c for c in choices if c != value]
    elif isinstance(value, bool):
        candidates = [not value]
    elif isinstance(value, int | float):
        candidates = [value + 1, value * 2, value / 2, 0, 1, 0.5, 1e-3, 2, 64, 512]
    else:
        candidates = ["other"]
    base = {n: default(cls, n) for n in settings(cls)}
    paths = {n: "." for n in ("source", "output", "examples") if n in base}
    for candidate in candidates:
        candidate = type(value)(candidate) if isinstance(value, int | float) else candidate
        try:
            config = build(cls, {**base, **paths, **context, name: candidate})
            config.validate()
        except (ConfigError, ValueError, TypeError):
            continue
        if flatten(config)[name] != value:
            return candidate
    return None


def _resolve_with(step: str, values: dict) -> dict:
    """Resolved configs with ``values`` set: as the run's parameters where it has one,
    else through the step's extra JSON."""
    import json

    named = {k: v for k, v in values.items() if k in NAMED}
    extra = json.dumps({k: v for k, v in values.items() if k not in NAMED})
    return _resolve(**{step: extra}, **named)


# Settings valid to change only with another: that one is set in the base run too.
CONTEXT = {"bn_reestimate_batches": {"bn_policy": "full"}, "sync_bn": {"bn_policy": "full"}}
FRACTIONS = ("train_fraction", "val_fraction", "test_fraction")  # they sum to 1


@pytest.mark.parametrize("step", ["prepare", "train"])
def test_every_setting_that_decides_the_model_reaches_the_lineage(step):
    """Each data and training setting, changed through the run's parameters, changes the
    lineage key, but for those listed as not deciding the model (paths, run identity,
    speed, previews): a missed wire would read as `unchanged` and never retrain."""

    from components.common.settings import default, settings
    from components.lineage.resolve import STEP_PATHS, STEPS
    from components.prepare_data.config import NOT_DATA_SETTINGS
    from components.train.config import NOT_TRAINING_SETTINGS

    cls, _ = STEPS[step]
    ignored = (NOT_DATA_SETTINGS if step == "prepare" else NOT_TRAINING_SETTINGS)
    missed, untested = [], []
    for name in settings(cls):
        if name in ignored or name in STEP_PATHS[cls] or name in FRACTIONS:
            continue
        context = CONTEXT.get(name, {})
        value = _other_value(cls, name, {**NAMED, **context}.get(name, default(cls, name)),
                             context)
        if value is None:
            untested.append(name)
            continue
        value = value.to_dict() if hasattr(value, "to_dict") else value
        if _key(_resolve_with(step, context)) == _key(_resolve_with(step, {**context,
                                                                           name: value})):
            missed.append(name)
    assert not missed, f"settings that do not reach the lineage: {missed}"
    assert not untested, f"no other valid value found for {untested}"
    if step == "prepare":  # a tenth moved from one split to the next
        base = _key(_resolve())
        for one, other in zip(FRACTIONS, FRACTIONS[1:] + FRACTIONS[:1], strict=True):
            moved = {one: round(NAMED[one] - 0.05, 2), other: round(NAMED[other] + 0.05, 2)}
            assert _key(_resolve(**moved)) != base, moved


def _argo_workflow(message: str) -> dict:
    """A KFP v2 run's Argo workflow as the KFP API stores it: each step is a DAG node
    (named after the task) that its pods name as their ``boundaryID``; `prepare-data`'s
    first try failed and its retry succeeded (no cause), `train`'s pod carries Argo's
    message; `children` also holds dependency edges (train's pod -> evaluate's driver)."""
    def node(name, kind, phase, boundary="", **more):
        return {"displayName": name, "type": kind, "phase": phase, "boundaryID": boundary,
                **more}

    nodes = {
        "wf": node("resnet50-finetune-x7k2p", "DAG", "Failed", children=["wf-1"]),
        "wf-1": node("exit-handler-1", "DAG", "Failed", "wf", children=["wf-2"]),
        "wf-2": node("condition-2", "DAG", "Failed", "wf-1"),
        "wf-3": node("prepare-data", "DAG", "Succeeded", "wf-2"),
        "wf-4": node("executor(0)", "Pod", "Failed", "wf-3", finishedAt="2026-12-07T01:00:00Z",
                     message="main: Error (exit code 1)"),
        "wf-5": node("executor(1)", "Pod", "Succeeded", "wf-3", children=["wf-6", "wf-7"]),
        "wf-6": node("train-driver", "Pod", "Succeeded", "wf-2"),
        "wf-7": node("train", "DAG", "Failed", "wf-2"),
        "wf-8": node("executor", "Retry", "Failed", "wf-7", children=["wf-9"]),
        "wf-9": node("executor(0)", "Pod", "Failed", "wf-7", finishedAt="2026-12-07T02:00:00Z",
                     message=message, children=["wf-10"]),
        "wf-10": node("evaluate-driver", "Pod", "Omitted", "wf-2"),
    }
    return {"metadata": {"name": "resnet50-finetune-x7k2p"}, "status": {"nodes": nodes}}


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
    """A stand-in for the KFP API server's GET /apis/v1beta1/runs/{id} (no Kubeflow API
    server can run here): the run's stored workflow, only with the PodDefault's token."""
    import json

    from components.lineage import failure
    from tests.rest_standin import RestStandIn

    token = tmp_path / "token"
    token.write_text("projected-token\n")
    runs = {}

    def get_run(groups, query, body):
        if groups["run"] not in runs:
            return 404, {"error": "run not found"}
        return 200, {"run": {"id": groups["run"], "status": "Failed"}, "pipeline_runtime": {
            "workflow_manifest": json.dumps(runs[groups["run"]])}}

    server = RestStandIn([("GET", r"/apis/v1beta1/runs/(?P<run>[\w-]+)$", get_run)])
    monkeypatch.setenv(failure.KFP_API_VARIABLE, server.url)
    monkeypatch.setenv(failure.TOKEN_VARIABLE, str(token))
    server.runs = runs
    yield server
    server.stop()


def test_a_failed_cluster_run_records_its_failing_step_and_why(tmp_path, kfp_api):
    """KFP's backend hands the exit handler state FAILED and an empty error: the record
    still names the step and Argo's reason (an OOM kill no step could report itself)."""
    registry = str(tmp_path / "registry")
    kfp_api.runs["run-1"] = _argo_workflow("main: OOMKilled (exit code 137)")
    record_run(registry, "m", "run-1", "FAILED", "", "", "resnet50-finetune-x7k2p")
    [run] = StorageRegistry(registry, "m").runs()
    assert (run["status"], run["failed_step"], run["error"]) == (
        "FAILED", "train", "main: OOMKilled (exit code 137)"), "not prepare-data's retried try"
    [request] = kfp_api.requests
    assert request["headers"]["Authorization"] == "Bearer projected-token"


def test_kfp_and_vertex_states_are_recorded_as_one_vocabulary(tmp_path, kfp_api):
    """KFP's backend says COMPLETE and CANCELED (MLMD's names), Vertex SUCCEEDED; a body
    still RUNNING when the handler runs ended badly. Vertex's error names the failed
    tasks; an unreadable API leaves the platform's message and where to look."""
    registry = str(tmp_path / "registry")
    record_run(registry, "m", "done", "COMPLETE", "", "", "wf-done")
    record_run(registry, "m", "stopped", "CANCELED", "", "", "wf-stopped")
    record_run(registry, "m", "vertex", "FAILED", "The DAG failed because some tasks failed. "
               "The failed tasks are: [train].", "", "projects/p/locations/l/pipelineJobs/j")
    record_run(registry, "m", "lost", "RUNNING", "", "", "wf-lost")
    runs = {r["run_id"]: r for r in StorageRegistry(registry, "m").runs()}
    assert runs["done"]["status"] == "SUCCEEDED" and runs["stopped"]["status"] == "CANCELLED"
    assert (runs["vertex"]["status"], runs["vertex"]["failed_step"]) == ("FAILED", "train")
    assert runs["lost"]["status"] == "FAILED" and not runs["lost"]["failed_step"]
    assert "the failing step is in the KFP UI" in runs["lost"]["error"]
    assert "404" in runs["lost"]["error"]
    assert [r["path"] for r in kfp_api.requests] == ["/apis/v1beta1/runs/stopped",
                                                     "/apis/v1beta1/runs/lost"]


@pytest.mark.parametrize("manifest", ["null", "[]", '{"status": {"nodes": []}}', "{"])
def test_a_malformed_workflow_never_stops_the_run_being_recorded(tmp_path, kfp_api, manifest):
    """Whatever the API answers, the exit handler records the run as FAILED with a cause
    that says where to look (it used to stay `running` if the lookup raised)."""
    from components.lineage import failure

    registry = str(tmp_path / "registry")
    kfp_api.routes.insert(0, ("GET", r"/apis/v1beta1/runs/bad$", lambda *_: (200, {
        "pipeline_runtime": {"workflow_manifest": manifest}})))
    record_run(registry, "m", "bad", "FAILED", "", "", "wf-bad")
    [run] = StorageRegistry(registry, "m").runs()
    assert run["status"] == "FAILED" and run["error"], run
    assert failure.failed_steps({"status": {"nodes": {}}}) == []
