"""Input pipeline images/s at 224 px.

1. Ours (TFRecords, tf.data, batched augmentation) vs the original tutorial's
   ImageDataGenerator.flow_from_directory, same images, same augmentations (shear, zoom
   0.2, horizontal flip), same batch size.
2. From 12-MP camera JPEGs: the data step's seconds per photo (it stores each at the size
   training needs), then the training input pipeline's images/s per core from those
   examples against the model step's (ResNet50 forward and backward at 224 px) on this
   machine. The last line compares with what an H100 needs from 16 cores.
Medians of 3. Usage: python -m benchmarks.input_pipeline
"""

import os
import tempfile
from pathlib import Path

from benchmarks.common import median_seconds, prepared_demo, report

SIZE, BATCH, BATCHES = 224, 32, 12
PHOTOS_PER_CLASS, MODEL_BATCH, MODEL_STEPS = 8, 8, 2
H100_NEEDS_PER_CORE = 225  # ~3,600 img/s of ResNet50 at 224 px in bf16, over 16 cores


def main() -> None:
    import tensorflow as tf
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from components.common.augment_policy import AugmentPolicy
    from components.train.data import make_dataset

    root = Path(tempfile.mkdtemp(prefix="bench-input-"))
    images, examples = prepared_demo(root, per_class=160, size=256)
    ours = make_dataset(str(examples), "train", SIZE, BATCH, 3, augment=AugmentPolicy(),
                        shuffle=True)
    iterator = iter(ours)

    def run_ours():
        for _ in range(BATCHES):
            next(iterator)[0].numpy()

    tutorial = ImageDataGenerator(shear_range=10.0, zoom_range=0.2, horizontal_flip=True,
                                  rescale=1.0 / 255).flow_from_directory(
        str(images), target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="categorical")

    def run_tutorial():
        for _ in range(BATCHES):
            next(tutorial)

    n = BATCHES * BATCH
    ours_rate = n / median_seconds(run_ours)
    tutorial_rate = n / median_seconds(run_tutorial)
    cores = os.cpu_count() or 1
    report(f"Input pipeline at {SIZE} px, batch {BATCH}, full augmentation, {cores} cores "
           f"(tf {tf.__version__})",
           [("ours: tf.data + batched banded-crop augmentation", ours_rate, "img/s"),
            ("ours per core", ours_rate / cores, "img/s/core"),
            ("tutorial: ImageDataGenerator.flow_from_directory", tutorial_rate, "img/s")],
           ("speed-up (ours / tutorial)", ours_rate / tutorial_rate))
    from_photos(root / "photos")


def _input_rate(examples: Path) -> float:
    from components.common.augment_policy import AugmentPolicy
    from components.train.data import make_dataset

    iterator = iter(make_dataset(str(examples), "train", SIZE, BATCH, 3,
                                 augment=AugmentPolicy(), shuffle=True, seed=1))

    def run():
        for _ in range(BATCHES):
            next(iterator)[0].numpy()

    return BATCHES * BATCH / median_seconds(run)


def _model_rate() -> float:
    import numpy as np

    from components.train import model as model_lib

    model = model_lib.build_model(3, SIZE, "none", 0.2)
    model_lib.apply_bn_policy(model, "full")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (MODEL_BATCH * MODEL_STEPS, SIZE, SIZE, 3))
    y = np.eye(3)[np.arange(len(x)) % 3]

    def run():
        model.fit(x, y, batch_size=MODEL_BATCH, epochs=1, verbose=0, shuffle=False)

    return len(x) / median_seconds(run)


def from_photos(root: Path) -> None:
    """12-MP camera JPEGs through the data step, then training's input vs the model."""
    import time

    from components.common.demo_data import camera_photo
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    sources, examples = root / "sources", root / "examples"
    for c in range(3):
        (sources / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(PHOTOS_PER_CLASS):
            (sources / f"class_{c}" / f"{i:03d}.jpg").write_bytes(
                camera_photo(seed=c * 1000 + i))
    photos = 3 * PHOTOS_PER_CLASS
    started = time.perf_counter()
    stats = run(PrepareConfig(source=str(sources), output=str(examples)))
    step_seconds = (time.perf_counter() - started) / photos
    stored = max(stats["config"]["stored_side"], 0)
    cores = os.cpu_count() or 1
    input_rate, model_rate = _input_rate(examples), _model_rate()
    report(f"From {photos} 12-MP camera JPEGs (4000x3000, ~5.9 MB), stored at {stored} px, "
           f"{cores} cores",
           [("data step per 12-MP photo (all cores)", step_seconds * 1000, "ms"),
            ("training input at 224 px, per core", input_rate / cores, "img/s/core"),
            ("model step (ResNet50 fwd+bwd, CPU), per core", model_rate / cores,
             "img/s/core")],
           ("input / model (above 1: the CPU model waits for nothing)",
            input_rate / model_rate))
    print(f"  {'input per core / what an H100 needs per core':<48} "
          f"{input_rate / cores / H100_NEEDS_PER_CORE:>10.2f}x")
    print(f"per-core input rate at 224 px from 12-MP sources: {input_rate / cores:.0f} img/s "
          f"(needed for an H100 on 16 cores: {H100_NEEDS_PER_CORE})")


if __name__ == "__main__":
    main()
