"""Each component under a real kfp.local SubprocessRunner (no cluster)."""

import json
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
