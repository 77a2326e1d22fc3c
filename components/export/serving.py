"""A SavedModel that serves raw encoded image bytes, at the size of its weights.

A ``tf.Module`` holds the serving functions and each variable once (Keras 3's
``model.export`` stores every weight twice, keras-team/keras#23553). Class names travel
as the ``labels.txt`` asset, read into a lookup table when the model loads.
"""

from __future__ import annotations

import os
import tempfile

import tensorflow as tf

from components.common.preprocess import decode_resize

MAX_IMAGE_BYTES = 20 * 1024 * 1024
TOP_K = 5
BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "pixels"
PIXELS_SIGNATURE = "serving_pixels"


class ServingModule(tf.Module):
    def __init__(self, keras_model, labels_path: str, num_classes: int, image_size: int):
        super().__init__(name="serving")
        # Not tracked: Keras variables would be saved a second time beside their values.
        object.__setattr__(self, "_model", keras_model)
        self.model_variables = [v.value for v in keras_model.variables]
        self.labels_asset = tf.saved_model.Asset(labels_path)
        self.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(self.labels_asset, tf.int64,
                                          tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                                          tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value="",
        )
        self.image_size = image_size
        self.top_k = min(TOP_K, num_classes)

    def _outputs(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = tf.cast(self._model(pixels, training=False), tf.float32)
        scores, indices = tf.math.top_k(probabilities, k=self.top_k)
        names = self.labels.lookup(tf.cast(indices, tf.int64))
        return {"probabilities": probabilities, "classes": names[:, :1],
                "top_k_classes": names, "top_k_scores": scores}

    def decode_batch(self, image_bytes: tf.Tensor) -> tf.Tensor:
        checks = [
            tf.debugging.assert_greater(tf.size(image_bytes), 0,
                                        message="empty batch: send at least one image"),
            tf.debugging.assert_less_equal(
                tf.strings.length(image_bytes), MAX_IMAGE_BYTES,
                message=f"image larger than {MAX_IMAGE_BYTES} bytes: resize it before sending"),
        ]
        with tf.control_dependencies(checks):
            return tf.map_fn(lambda b: decode_resize(b, self.image_size), image_bytes,
                             fn_output_signature=tf.TensorSpec(
                                 [self.image_size, self.image_size, 3], tf.float32))


def save_serving_model(keras_model, labels: list[str], image_size: int, export_dir: str) -> None:
    """Write the SavedModel with ``serving_default`` (bytes) and ``serving_pixels``."""
    with tempfile.TemporaryDirectory(prefix="labels-") as scratch:
        labels_file = os.path.join(scratch, "labels.txt")
        with open(labels_file, "w") as handle:
            handle.write("\n".join(labels) + "\n")
        _save(ServingModule(keras_model, labels_file, len(labels), image_size), image_size,
              export_dir)


def _save(module: ServingModule, image_size: int, export_dir: str) -> None:

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    def serve_bytes(image_bytes):
        return module._outputs(module.decode_batch(image_bytes))

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32,
                                                name=PIXELS_INPUT)])
    def serve_pixels(pixels):
        return module._outputs(pixels)

    module.serve_bytes = serve_bytes
    module.serve_pixels = serve_pixels
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": serve_bytes, PIXELS_SIGNATURE: serve_pixels})
