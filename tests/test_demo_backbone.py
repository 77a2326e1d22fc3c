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
@pytest.mark.parametrize("seed", [0, 1])
def test_the_recommended_fine_tune_from_the_demo_backbone_learns_the_demo_task(tmp_path, seed):
    """The default recipe at run-local's size (64 px, 4 epochs: frozen BN, a head warm-up,
    then the conv5 stage) from the demo backbone on its data, few-shot (24 training images,
    6 steps an epoch), scored on 84 test images (chance: 1/3). Deterministic now: seeds 1,
    2 and 3 score 0.786, 0.976 and 0.893 (seed 1 scored 0.893 with global_norm at 1.0,
    the old default: on 24 training images the seed moves accuracy more than the clipping
    does). 0.7 is far above chance on 84 images. Every layer from random weights for the
    same steps scored 0.90 and 0.99: the demo's classes differ by colour, which a network
    learns from scratch in 24 steps, so this task shows the recipe working, not an
    accuracy gap over random weights."""
    from components.common.demo_data import write_demo_data
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run as prepare
    from components.train.config import TrainConfig
    from components.train.contract import MODEL_FILE
    from components.train.data import make_dataset
    from components.train.model import load_trained_model
    from components.train.run import run as train
    from pipeline.local_run import demo_backbone

    write_demo_data(str(tmp_path / "data"), classes=3, per_class=40, size=96, seed=0)
    examples = str(tmp_path / "examples")
    prepare(PrepareConfig(source=str(tmp_path / "data"), output=examples, train_fraction=0.2,
                          val_fraction=0.1, test_fraction=0.7))
    train(TrainConfig.of(examples=examples, output=str(tmp_path / "model"), image_size=64,
                         epochs=4, steps_per_epoch=6, batch_size=16, precision="float32",
                         weights=demo_backbone(), fine_tune_blocks=3, seed=seed))
    model = load_trained_model(str(tmp_path / "model" / MODEL_FILE))
    right = [np.argmax(model.predict_on_batch(x), 1) == np.argmax(y, 1)
             for x, y in make_dataset(examples, "test", 64, 16, 3)]
    accuracy = np.mean(np.concatenate(right))
    assert accuracy >= 0.7
