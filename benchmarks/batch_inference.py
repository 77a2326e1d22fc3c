"""Batch inference throughput on the test shards: the evaluate step's Beam job
(tfx-bsl RunInference, DirectRunner) vs a plain in-process loop over the same SavedModel
signature, vs ``model.predict`` on the Keras model. Every side reads the shards inside
its timing; the Beam side also starts its pipeline and loads the model each time, as the
evaluate step does. Goal: Beam >= 0.8x the plain loop.
Usage: python -m benchmarks.batch_inference [--size 224]
"""

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import median_seconds, prepared_demo, report

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224, help="model input size in pixels")
    size = parser.parse_args().size
    import numpy as np
    import tensorflow as tf

    from components.common.examples import ENCODED, parse, shard_files
    from components.common.preprocess import decode_resize
    from components.evaluate import inference
    from components.export.serving import save_serving_model
    from components.train import model as model_lib

    root = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    _images, examples = prepared_demo(root, per_class=1500, size=128)
    shards = shard_files(str(examples), "test")
    model = model_lib.build_model(3, size, "none", 0.0)
    saved = str(root / "saved_model")
    save_serving_model(model, ["a", "b", "c"], size, saved)
    n = sum(1 for _ in tf.data.TFRecordDataset(shards))
    serve = tf.saved_model.load(saved).signatures["serving_default"]

    def read_encoded():
        return [r[ENCODED].numpy() for r in tf.data.TFRecordDataset(shards).map(parse)]

    def plain_loop():
        encoded = read_encoded()
        for i in range(0, n, BATCH):
            serve(image_bytes=tf.constant(encoded[i : i + BATCH]))["probabilities"].numpy()

    def keras_predict():
        encoded = read_encoded()
        pixels = np.stack([decode_resize(tf.constant(b), size).numpy() for b in encoded])
        model.predict(pixels, batch_size=BATCH, verbose=0)

    counter = iter(range(100))

    def beam_job():
        inference.predict(saved, shards, n, str(root / f"beam-{next(counter)}"))

    beam = n / median_seconds(beam_job)
    plain = n / median_seconds(plain_loop)
    predict = n / median_seconds(keras_predict)
    report(f"Batch inference over {n} test images at {size} px on CPU",
           [("Beam RunInference (DirectRunner)", beam, "img/s"),
            ("plain loop over the SavedModel signature", plain, "img/s"),
            ("keras predict (decode in Python first)", predict, "img/s")],
           ("Beam / plain loop (goal >= 0.8)", beam / plain))


if __name__ == "__main__":
    main()
