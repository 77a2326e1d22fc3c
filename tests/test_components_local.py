"""Each component under a real kfp.local SubprocessRunner (no cluster)."""

import json
import shutil
from pathlib import Path

import pytest
from kfp import local


@pytest.fixture
def kfp_local(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    return tmp_path


def test_prepare_data_component(kfp_local, demo_dir):
    from components.lineage.resolve import resolve
    from components.prepare_data.component import prepare_data

    extra = {"augmentation": {"rotation_degrees": 15.0}, "preview_images": 3}
    config = resolve({"source": str(demo_dir)}, {"prepare_extra_json": json.dumps(extra)})
    task = prepare_data(data_fingerprint="", config=config["prepare"])
    examples = Path(task.outputs["examples"].path)
    assert json.loads((examples / "augmentation.json").read_text())["rotation_degrees"] == 15
    stats = json.loads((examples / "stats.json").read_text())
    assert task.outputs["num_classes"] == 3
    assert task.outputs["fingerprint"] == stats["fingerprint"]
    assert task.outputs["examples"].metadata["split_totals"] == stats["split_totals"]
    assert "Data report" in Path(task.outputs["data_report"].path).read_text()
    assert "<img" in Path(task.outputs["augmentation_preview"].path).read_text()


def test_with_beam_workers_elsewhere_the_data_step_writes_to_the_artifacts_uri(
        s3_bucket, demo_dir, tmp_path):
    """Stands in for KFP's launcher (no cluster here), as read in kubeflow/pipelines 2.17.0
    (launcher_v2.go's uploadOutputArtifacts, objectstore.UploadBlob and DownloadBlob): the
    step sees its output artifact at a local path, the launcher then uploads only the files
    there are and deletes nothing, and the next step downloads the URI's whole prefix. Beam
    workers on other machines cannot write the pod's local copy, so with Beam's
    --temp_location the step writes the examples to the artifact's URI (S3 on moto)."""
    from kfp.dsl import HTML, Dataset, Markdown

    from components.common import storage
    from components.lineage.resolve import resolve
    from components.prepare_data.component import prepare_data

    extra = {"beam_args": ["--runner=FnApiRunner", f"--temp_location={s3_bucket}/tmp"]}
    config = resolve({"source": str(demo_dir)}, {"prepare_extra_json": json.dumps(extra)})
    pod = tmp_path / "pod"
    examples = Dataset(uri=f"{s3_bucket}/root/prepare-data/examples")
    examples.custom_path = str(pod / "s3" / "examples")  # what the launcher localizes
    report, preview = Markdown(uri=str(pod / "report.md")), HTML(uri=str(pod / "preview.html"))
    found = prepare_data.python_func(data_fingerprint="", config=config["prepare"],
                                     examples=examples, data_report=report,
                                     augmentation_preview=preview)
    assert found.num_classes == 3 and examples.metadata["split_totals"]["train"] > 0
    assert storage.list_files(f"{examples.uri}/train"), "the shards are at the URI"
    assert not Path(examples.path).exists(), "nothing for the launcher to upload over them"
    assert "Data report" in Path(report.path).read_text()
    assert not storage.list_files(f"{s3_bucket}/tmp"), "the Beam work is deleted"


def test_with_beam_workers_elsewhere_evaluation_reads_the_examples_artifacts_uri(
        bucket, examples_dir, saved_model_dir, tmp_path, monkeypatch):
    """Stands in for KFP's launcher as above: with a --temp_location in the gate's
    beam_args, the evaluate step's Beam workers read the test shards at the examples
    artifact's URI (Cloud Storage on the emulator), which workers elsewhere reach; the
    step itself reads its localized copy."""
    from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

    from components.common import storage
    from components.evaluate import inference
    from components.evaluate.component import evaluate
    from components.lineage.resolve import resolve

    examples = Dataset(uri=storage.join(bucket, "root", "prepare-data", "examples"))
    storage.copy_tree(str(examples_dir), examples.uri)
    examples.custom_path = str(tmp_path / "pod" / "gcs" / "examples")  # what KFP localizes
    shutil.copytree(examples_dir, examples.path)
    scored_shards = []
    predict = inference.predict

    def recorded(saved_model, shard_files, *args):
        scored_shards.extend(shard_files)
        return predict(saved_model, shard_files, *args)
    monkeypatch.setattr(inference, "predict", recorded)
    extra = {"beam_args": [f"--temp_location={tmp_path / 'beam-temp'}"], "min_accuracy": -1}
    config = resolve({"source": "images"}, {"gate_extra_json": json.dumps(extra)})["gate"]
    pod = tmp_path / "pod"
    decision = evaluate.python_func(
        examples=examples, saved_model=Model(uri=str(saved_model_dir)),
        evaluation=Artifact(uri=str(pod / "evaluation")), metrics=Metrics(uri=str(pod / "m")),
        confusion_matrix=ClassificationMetrics(uri=str(pod / "cm")),
        evaluation_report=Markdown(uri=str(pod / "report.md")),
        worst_mistakes=HTML(uri=str(pod / "mistakes.html")), config=config)
    assert decision == "reject", "no threshold checked: the gate fails closed"
    scored = (pod / "evaluation" / "predictions_candidate.jsonl").read_text().splitlines()
    assert len(scored) == json.loads(
        (examples_dir / "stats.json").read_text())["split_totals"]["test"]
    assert scored_shards and all(s.startswith(f"{examples.uri}/test/") for s in scored_shards)
