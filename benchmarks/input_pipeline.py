"""Input pipeline images/s at 224 px: ours (TFRecords, tf.data, batched augmentation) vs
the original tutorial's ImageDataGenerator.flow_from_directory, same images, same
augmentations (shear, zoom 0.2, horizontal flip), same batch size. Medians of 3.
Usage: python -m benchmarks.input_pipeline
"""

import os
import tempfile
from pathlib import Path

from benchmarks.common import median_seconds, prepared_demo, report

SIZE, BATCH, BATCHES = 224, 32, 12


def main() -> None:
    import tensorflow as tf
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from components.common.augment_policy import AugmentPolicy
    from components.train.data import make_dataset

    root = Path(tempfile.mkdtemp(prefix="bench-input-"))
    images, examples = prepared_demo(root, per_class=160, size=256)
    ours = make_dataset(str(examples), "train", SIZE, BATCH, 3, augment=AugmentPolicy(),
                        shuffle=True).repeat()
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


if __name__ == "__main__":
    main()
