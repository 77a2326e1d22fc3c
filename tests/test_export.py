"""The exported SavedModel: signatures, parity on every input kind, errors, REST form."""

import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.preprocess import decode_resize
from components.export.validate import EXPECTED_SIGNATURES, InfraValidationError, check_parity
from components.train.model import load_trained_model
from tests.conftest import TINY_TRAIN
from tests.images_factory import valid_variants


@pytest.fixture(scope="module")
def served(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir))


@pytest.fixture(scope="module")
def keras_model(trained_dir):
    return load_trained_model(str(trained_dir / "model.keras"))


def test_metadata_records_validation_size_and_latency(saved_model_dir):
    meta = json.loads((saved_model_dir / "export_metadata.json").read_text())
    assert meta["infra_validation"]["passed"]
    assert meta["size_ratio"] < 1.1, "weights must be stored once"
    for batch in ("batch_1", "batch_32"):
        assert 0 < meta["infra_validation"]["latency"][batch]["p50_ms"]
    assert meta["input_size"] == 32 and meta["bn_policy"] == "frozen"
    assert (saved_model_dir / "assets" / "labels.txt").read_text().split() == meta["labels"]


def test_signatures_have_documented_names(served):
    assert set(EXPECTED_SIGNATURES) <= set(served.signatures)
    spec = served.signatures["serving_default"].structured_input_signature[1]
    assert spec["image_bytes"].dtype == tf.string and spec["image_bytes"].shape.as_list() == [None]
    outputs = served.signatures["serving_default"].structured_outputs
    assert outputs["classes"].shape.as_list() == [None, 1]


@pytest.mark.parametrize("name", ["rgb.jpg", "gray.png", "rgba.png", "palette.gif", "bitmap.bmp"])
def test_bytes_signature_matches_keras(served, keras_model, name):
    data = valid_variants()[name]
    out = served.signatures["serving_default"](image_bytes=tf.constant([data]))
    pixels = decode_resize(tf.constant(data), 32)[None]
    expected = keras.ops.convert_to_numpy(keras_model(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)
    assert out["top_k_scores"].shape[1] == 3
    assert out["classes"].numpy()[0, 0] == out["top_k_classes"].numpy()[0, 0]


def test_pixels_signature_agrees_with_bytes(served):
    data = valid_variants()["rgb.jpg"]
    by_bytes = served.signatures["serving_default"](image_bytes=tf.constant([data]))
    pixels = decode_resize(tf.constant(data), 32)[None]
    by_pixels = served.signatures["serving_pixels"](pixels=pixels)
    np.testing.assert_allclose(by_bytes["probabilities"], by_pixels["probabilities"], atol=1e-6)


@pytest.mark.parametrize("batch,message", [
    ([b"not an image"], "Unknown image file format"),
    ([], "empty batch"),
])
def test_bad_input_gives_a_clear_error(served, batch, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures["serving_default"](image_bytes=tf.constant(batch, dtype=tf.string))


def test_rest_json_base64_round_trip(served):
    """TF Serving's REST form decodes {"b64": ...} to the same bytes the signature gets."""
    data = valid_variants()["rgb.jpg"]
    body = json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(data).decode()}}]})
    decoded = [base64.b64decode(i["image_bytes"]["b64"]) for i in json.loads(body)["instances"]]
    direct = served.signatures["serving_default"](image_bytes=tf.constant([data]))
    via_rest = served.signatures["serving_default"](image_bytes=tf.constant(decoded))
    np.testing.assert_array_equal(direct["probabilities"], via_rest["probabilities"])


def test_parity_check_rejects_disagreement():
    probs = np.array([[0.7, 0.2, 0.1]])
    with pytest.raises(InfraValidationError, match="top-1 differs"):
        check_parity(probs, {"probabilities": probs.tolist(), "classes": ["b"]}, ["a", "b", "c"],
                     1e-4)
    with pytest.raises(InfraValidationError, match="differ by"):
        check_parity(probs, {"probabilities": [[0.6, 0.3, 0.1]], "classes": ["a"]},
                     ["a", "b", "c"], 1e-4)


def test_a_non_empty_output_is_refused_before_exporting(trained_dir, examples_dir, tmp_path):
    from components.export.run import run

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        run(str(trained_dir), str(examples_dir), str(out))
    assert (out / "keep.txt").read_text() == "precious"


def test_exports_in_place_where_directory_renames_fail(no_directory_renames, trained_dir,
                                                       examples_dir, tmp_path):
    from components.common import outputs
    from components.export.run import run

    out = tmp_path / "gcs-fuse" / "saved_model"
    run(str(trained_dir), str(examples_dir), str(out), parity_images=4)
    assert outputs.is_complete(str(out)) and (out / "saved_model.pb").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["saved_model"]


def test_a_12_megapixel_upload_is_served_as_its_stored_copy_was_trained(served):
    """Train/serve parity at photo size: the data step stores a 4000x3000 JPEG at 404 px,
    training resizes that copy, serving resizes the raw upload; both resizes antialiased,
    they agree (probabilities within 0.02). A plain bilinear resize of the upload keeps its
    sensor noise and texture (9 grey levels off on average) and moved this test model's
    probabilities by 0.09. The test model is the suite's 32-px one trained from random
    weights (no pretrained backbone can be downloaded here)."""
    from components.common.demo_data import camera_photo
    from components.common.images import stored_image

    raw = camera_photo()
    stored = stored_image(raw, 50_000_000, 404)
    serve = served.signatures["serving_default"]
    raw_out = serve(image_bytes=tf.constant([raw]))["probabilities"].numpy()
    stored_out = serve(image_bytes=tf.constant([stored]))["probabilities"].numpy()
    np.testing.assert_allclose(raw_out, stored_out, atol=0.02)
    size = TINY_TRAIN["image_size"]
    trained = decode_resize(tf.constant(stored), size).numpy()
    plain = tf.image.resize(tf.cast(tf.io.decode_image(raw, channels=3), tf.float32),
                            [size, size]).numpy()
    served_pixels = decode_resize(tf.constant(raw), size).numpy()
    assert abs(served_pixels - trained).mean() < 1.0
    assert abs(plain - trained).mean() > 5.0
    without = served.signatures["serving_pixels"](pixels=tf.constant(plain[None]))
    assert abs(without["probabilities"].numpy() - stored_out).max() > 0.02


def test_relative_paths_on_the_command_line_are_resolved(
        trained_dir, examples_dir, tmp_path, monkeypatch):
    """Infra validation loads the SavedModel in a fresh process started in /: a relative
    --output must still find it."""
    import os

    from click.testing import CliRunner

    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--model", os.path.relpath(trained_dir),
                                       "--examples", os.path.relpath(examples_dir),
                                       "--output", "sm"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sm" / "saved_model.pb").exists()


def test_a_model_that_keras_cannot_load_safely_is_one_line(trained_dir, examples_dir, tmp_path):
    """A model.keras holding a Lambda layer (arbitrary Python) is refused by Keras' safe
    mode: one line naming the file and the fix, exit code 2, nothing exported."""
    import shutil

    from click.testing import CliRunner

    from pipeline.cli import main

    model_dir = tmp_path / "model"
    shutil.copytree(trained_dir, model_dir)
    lambda_model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    lambda_model.save(model_dir / "model.keras")
    result = CliRunner().invoke(main, ["export", "--model", str(model_dir), "--examples",
                                       str(examples_dir), "--output", str(tmp_path / "sm")])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {model_dir / 'model.keras'}: Keras refuses to load it")
    assert "Lambda" in line and not (tmp_path / "sm" / "_SUCCESS").exists()
