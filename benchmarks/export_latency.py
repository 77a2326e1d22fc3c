"""Per-image latency of the exported SavedModel's bytes signature (decode included) vs
``keras_model.predict`` on already-decoded images, batch 1 and 32, on CPU. Medians.
Usage: python -m benchmarks.export_latency
"""

import tempfile
from pathlib import Path

from benchmarks.common import median_seconds, prepared_demo, report

SIZE = 224


def main() -> None:
    import numpy as np
    import tensorflow as tf

    from components.common.examples import ENCODED, parse, shard_files
    from components.common.preprocess import decode_resize
    from components.export.serving import save_serving_model
    from components.train import model as model_lib

    root = Path(tempfile.mkdtemp(prefix="bench-export-"))
    _images, examples = prepared_demo(root, per_class=20, size=256)
    model = model_lib.build_model(3, SIZE, "none", 0.0)
    save_serving_model(model, ["a", "b", "c"], SIZE, str(root / "saved_model"))
    serve = tf.saved_model.load(str(root / "saved_model")).signatures["serving_default"]
    encoded = [r[ENCODED].numpy() for r in
               tf.data.TFRecordDataset(shard_files(str(examples), "train")).map(parse).take(32)]
    pixels = np.stack([decode_resize(tf.constant(b), SIZE).numpy() for b in encoded])
    rows = []
    ratios = []
    for batch in (1, 32):
        served = median_seconds(lambda b=batch: serve(image_bytes=tf.constant(encoded[:b])), 5)
        predicted = median_seconds(lambda b=batch: model.predict(pixels[:b], verbose=0), 5)
        rows += [(f"SavedModel bytes signature, batch {batch} (ms/image)",
                  1000 * served / batch, "ms"),
                 (f"keras predict on decoded pixels, batch {batch} (ms/image)",
                  1000 * predicted / batch, "ms")]
        ratios.append(predicted / served)
    report(f"Serving latency at {SIZE} px on CPU (decode included on the bytes side)", rows,
           ("predict time / bytes-signature time, batch 1", ratios[0]))
    print(f"  {'predict time / bytes-signature time, batch 32':<48} {ratios[1]:>10.2f}x")


if __name__ == "__main__":
    main()
