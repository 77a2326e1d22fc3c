"""Training images/s at 64 px on CPU: our fit (tf.data, clipping optimizer, BN policy) vs
a tutorial-style fit (ImageDataGenerator input, float32, plain Adam, no clipping), same
model, same images. Median of 3 epochs after a warm-up epoch.
Usage: python -m benchmarks.train_throughput
"""

import tempfile
from pathlib import Path

from benchmarks.common import median_seconds, prepared_demo, report

SIZE, BATCH, STEPS = 64, 32, 6


def main() -> None:
    import keras
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from components.common.augment_policy import AugmentPolicy
    from components.train import model as model_lib
    from components.train.clipping import clipping_optimizer
    from components.train.data import make_dataset

    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    images, examples = prepared_demo(root, per_class=80, size=96)

    ours = model_lib.build_model(3, SIZE, "none", 0.2)
    model_lib.apply_bn_policy(ours, "bn_only")
    ours.compile(optimizer=clipping_optimizer(keras.optimizers.Adam, "global_norm", 1.0,
                                              learning_rate=1e-3),
                 loss="categorical_crossentropy", metrics=["accuracy"])
    ours_data = make_dataset(str(examples), "train", SIZE, BATCH, 3, augment=AugmentPolicy(),
                             shuffle=True)

    tutorial = model_lib.build_model(3, SIZE, "none", 0.2)
    for layer in tutorial.get_layer("resnet50").layers:
        layer.trainable = isinstance(layer, keras.layers.BatchNormalization)
    tutorial.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                     loss="categorical_crossentropy", metrics=["accuracy"])
    tutorial_data = ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                                       rescale=1.0 / 255).flow_from_directory(
        str(images), target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="categorical")

    def fit(model, data):
        return lambda: model.fit(data, steps_per_epoch=STEPS, epochs=1, verbose=0)

    n = STEPS * BATCH
    ours_rate = n / median_seconds(fit(ours, ours_data))
    tutorial_rate = n / median_seconds(fit(tutorial, tutorial_data))
    report(f"Training at {SIZE} px on CPU, batch {BATCH}, BN-only ResNet50",
           [("ours: tf.data + clipping optimizer", ours_rate, "img/s"),
            ("tutorial-style: ImageDataGenerator, plain Adam", tutorial_rate, "img/s")],
           ("speed-up (ours / tutorial)", ours_rate / tutorial_rate))


if __name__ == "__main__":
    main()
