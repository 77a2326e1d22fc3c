"""The demo backbone: a deterministic pretext task disjoint from the demo classes."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from components.train.demo_backbone import HUE_BANDS, PATTERNS, pretext_images


def test_pretext_images_are_deterministic_and_balanced_over_patterns_and_hue_bands():
    classes = len(PATTERNS) * HUE_BANDS
    a, labels = pretext_images(per_class=6, size=32, seed=3)
    b, _ = pretext_images(per_class=6, size=32, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6 * classes, 32, 32, 3) and 0 <= a.min() and a.max() <= 255
    assert np.bincount(labels).tolist() == [6] * classes


@pytest.fixture(scope="module")
def examples_64px(tmp_path_factory):
    """run-local's demo data set (3 classes of 40) through the data step."""
    from components.common.demo_data import write_demo_data
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    root = tmp_path_factory.mktemp("demo64")
    write_demo_data(str(root / "images"), classes=3, per_class=40, size=96, seed=0)
    run(PrepareConfig(source=str(root / "images"), output=str(root / "examples")))
    return root / "examples"


def _weights(path) -> list[np.ndarray]:
    with h5py.File(path) as f:
        arrays = []
        f.visititems(lambda _n, obj: arrays.append(obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
def test_the_same_seed_gives_the_same_backbone(tmp_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.weights.h5"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "finetune"), "demo-weights", str(out),
             "--image-size", "32",
             "--epochs", "1", "--per-class", "8"], capture_output=True, text=True, check=True)
        summary = json.loads(result.stdout[result.stdout.index("{"):])
        assert summary["pretext_classes"] == len(PATTERNS) * HUE_BANDS and summary["seconds"] > 0
        outputs.append(_weights(out))
    assert len(outputs[0]) > 300, "every ResNet50 variable is saved"
    for x, y in zip(*outputs, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_weights_path_without_the_keras_suffix_is_refused(tmp_path):
    from components.common.errors import ConfigError
    from components.train.demo_backbone import write_demo_weights

    with pytest.raises(ConfigError, match=r"\.weights\.h5"):
        write_demo_weights(str(tmp_path / "w.h5"))


@pytest.mark.slow
def test_the_recommended_fine_tune_needs_the_demo_backbone(examples_64px, tmp_path):
    """The point of the demo backbone: the recommended recipe (frozen BN, the head, then
    the top blocks) has features to build on. The same recipe and epochs from random
    weights is the control; accuracy on the 24 validation and test images, log loss on
    ties. (Against ``full`` from random weights the demo task, whose classes differ in
    hue, is too easy to separate the two reliably: the issue's comparison, measured in
    the closing note.)"""
    from benchmarks.head_warmup import score
    from components.train.config import TrainConfig
    from components.train.run import run
    from pipeline.local_run import demo_backbone

    common = dict(examples=str(examples_64px), image_size=64, epochs=4, batch_size=16,
                  precision="float32", bn_policy="frozen", fine_tune_blocks=3, head_epochs=2)
    run(TrainConfig(output=str(tmp_path / "backbone"), weights=demo_backbone(), **common))
    run(TrainConfig(output=str(tmp_path / "random"), weights="none", **common))
    pretrained = score(tmp_path / "backbone" / "model.keras", examples_64px, 64, 3)
    random = score(tmp_path / "random" / "model.keras", examples_64px, 64, 3)
    assert (pretrained[0], -pretrained[1]) > (random[0], -random[1]), (pretrained, random)
