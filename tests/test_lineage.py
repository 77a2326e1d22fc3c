"""Lineage: the same data, settings and code as production is `unchanged`; anything else,
or `force`, retrains. The run log's final record cleans up a failed run's backup."""

import pytest

from components.lineage.lineage import Lineage, code_version, compare
from components.lineage.run import NO_VERSION, check, record_run, resolve_production
from components.promote.registry import Registry
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


def production_with(tmp_path, data_fingerprint: str) -> tuple[str, Registry]:
    """A registry whose production v1 was made from ``data_fingerprint`` with SETTINGS and
    this code (the SavedModel is a stand-in: the registry only moves files)."""
    registry = str(tmp_path / "registry")
    reg = Registry(registry, "m")
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
    assert [(r["run_id"], r["status"]) for r in Registry(registry, "m").runs()] == [
        ("failed", "FAILED"), ("ok", "SUCCEEDED")]


def test_a_run_killed_before_its_exit_handler_is_recorded_by_a_later_run(tmp_path):
    """The platform ended run 'killed' (its exit handler never ran); 'recent' is still
    going. Two days later the next run's lineage check records the first as KILLED."""
    import time

    from components.lineage.run import ABANDONED_AFTER_S, close_abandoned_runs

    reg = Registry(str(tmp_path / "registry"), "m")
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


NAMED = {"train_fraction": 0.8, "val_fraction": 0.1, "test_fraction": 0.1, "image_size": 64,
         "bn_policy": "frozen", "clip": "global_norm", "clip_threshold": 1.0, "epochs": 4,
         "batch_size": 16, "learning_rate": 1e-3, "weights": "none", "seed": 0}
GATE = {"min_accuracy": 0.5, "max_ece": -1.0, "non_inferiority_margin": 0.035,
        "confidence": 0.95, "mcnemar_alpha": 0.05, "max_class_recall_drop": 0.1}


@pytest.mark.parametrize("extras, message", [
    (("{}", "{}", '{"min_improvment": 0.01}'), "gate_extra_json sets .'min_improvment'."),
    (('{"head_epochs": 4, "fine_tune_blocks": 2}', "{}", "{}"), "--head-epochs 4 with --epochs 4"),
    (("{}", '{"augmentation": {"zoom_fraction": 2}}', "{}"), "zoom_fraction=2"),
    (("{}", "{}", '{"class_alpha": 0}'), "class_alpha=0"),
])
def test_every_steps_settings_are_checked_before_any_step_runs(extras, message):
    from components.common.errors import ConfigError
    from components.lineage.run import check_settings

    train, prepare, gate = extras
    check_settings(NAMED, "{}", '{"min_side": 64}', GATE, '{"min_improvement": 0.01}')
    with pytest.raises(ConfigError, match=message):
        check_settings(NAMED, train, prepare, GATE, gate)
