"""The evaluate step with real SavedModels and the real Beam RunInference job."""

import json
import shutil

import pytest

from components.common.errors import ConfigError
from components.evaluate.gate import GateConfig
from components.evaluate.run import run


def same_predictions(saved_model_dir, folder) -> str:
    """Stands in for another model with the same predictions: a copy with one more file."""
    shutil.copytree(saved_model_dir, folder)
    (folder / "notes.txt").write_text("a retrained model that predicts alike")
    return str(folder)


def test_a_byte_identical_candidate_is_unchanged(saved_model_dir, examples_dir, tmp_path):
    result = run(str(saved_model_dir), str(examples_dir), str(tmp_path / "e"),
                 GateConfig.only(min_accuracy=0.0), baseline=str(saved_model_dir),
                 baseline_version=3)
    assert result["decision"] == "unchanged"
    assert result["reasons"] == ["the candidate is byte-identical to production v3: nothing "
                                 "to promote"]


def test_an_equal_candidate_on_six_images_is_kept_out_and_the_report_says_why(
        saved_model_dir, examples_dir, tmp_path):
    """No disagreement at all, yet 6 paired images cannot bound the difference within the
    margin: non-inferiority fails, and the report says the split is too small."""
    out = tmp_path / "evaluation"
    result = run(same_predictions(saved_model_dir, tmp_path / "candidate"), str(examples_dir),
                 str(out),
                 GateConfig.only(min_accuracy=0.0, non_inferiority_margin=0.035,
                                 mcnemar_alpha=0.05),
                 baseline=str(saved_model_dir))
    gate = json.loads((out / "gate.json").read_text())
    assert result["decision"] == gate["decision"] == "reject"
    assert [c["check"] for c in gate["checks"] if not c["passed"]] == ["non_inferiority"]
    assert gate["discordant"] == [0, 0] and gate["statistics"]["paired"]["n"] == 6
    assert result["candidate"]["accuracy"] == result["baseline"]["accuracy"]
    predictions = (out / "predictions_candidate.jsonl").read_text().splitlines()
    assert len(predictions) == result["candidate"]["examples"] == 6
    report = (out / "report.md").read_text()
    assert "| accuracy |" in report and "## What this test split can see" in report
    assert "production will almost always be kept" in report, "6 test images say so"
    assert "<!doctype html>" in (out / "worst_mistakes.html").read_text()


def test_beam_workers_elsewhere_need_a_temp_location_tensorflow_reads(tmp_path):
    with pytest.raises(ConfigError, match="reads local paths and gs:// only"):
        run(str(tmp_path / "never-read"), str(tmp_path / "examples"), str(tmp_path / "out"),
            GateConfig(beam_args=("--temp_location=s3://bucket/tmp",)))
    assert not (tmp_path / "out").exists()


def test_a_baseline_with_other_labels_is_refused_unless_allowed(saved_model_dir, examples_dir,
                                                                tmp_path):
    other = tmp_path / "other_labels"
    shutil.copytree(saved_model_dir, other)
    (other / "assets" / "labels.txt").write_text("cat\ndog\nbird\n")
    refused = run(str(saved_model_dir), str(examples_dir), str(tmp_path / "e1"),
                  GateConfig.only(min_accuracy=0.0), baseline=str(other))
    assert refused["decision"] == "reject"
    assert any("different label set" in r for r in refused["reasons"])
    allowed = run(str(saved_model_dir), str(examples_dir), str(tmp_path / "e2"),
                  GateConfig.only(min_accuracy=0.0, allow_label_change=True), baseline=str(other))
    assert allowed["decision"] == "promote" and allowed["baseline"] is None


def test_production_from_an_s3_registry_and_promotion_back_into_it(saved_model_dir,
                                                                   examples_dir, s3_bucket,
                                                                   tmp_path):
    """TensorFlow cannot open s3://: evaluate scores local copies; promote writes to S3."""
    from components.common import outputs, storage
    from components.evaluate.run import resolve_baseline
    from components.promote.run import run as promote
    from components.registry.storage_registry import StorageRegistry

    registry = f"{s3_bucket}/registry"
    reg = StorageRegistry(registry, "m")
    reg.promote(reg.register(str(saved_model_dir), "first")["version"], "first")
    baseline, version = resolve_baseline(registry=registry, model_name="m")
    assert (baseline, version) == (f"{registry}/m/versions/1", 1)
    out = f"{s3_bucket}/evaluation"
    candidate = same_predictions(saved_model_dir, tmp_path / "candidate")
    result = run(candidate, str(examples_dir), out,
                 GateConfig.only(min_accuracy=0.0, mcnemar_alpha=0.05), baseline, version)
    gate = json.loads(storage.read_text(f"{out}/gate.json"))
    assert result["decision"] == gate["decision"] == "promote"
    assert (gate["baseline"], gate["baseline_version"], gate["discordant"]) == \
        (baseline, 1, [0, 0])
    assert outputs.is_complete(out)
    summary = promote(candidate, out, registry, "m", "second")
    assert (summary["version"], summary["previous_version"]) == (2, 1)
    assert reg.current() == 2
