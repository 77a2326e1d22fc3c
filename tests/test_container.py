"""The image, built here with podman on a debootstrap base, and the demo pipeline run in
it through kfp.local's DockerRunner against podman's Docker API (no network, non-root).
The image is cached by its content hash, so only the first run on a machine builds it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from components.common.errors import ConfigError
from pipeline import container


@pytest.fixture(scope="module")
def image():
    if not (shutil.which("podman") and shutil.which("debootstrap")):
        pytest.fail("podman and debootstrap are missing: `make test` installs them "
                    "(`make containers`)")
    return container.build()


@pytest.mark.slow
def test_inside_the_image_with_no_network(image, tmp_path):
    from pipeline.pipeline import compile_pipeline
    from pipeline.profiles import load

    spec = compile_pipeline(str(tmp_path / "p.yaml"), load("kubeflow", {"image": image["image"]}))
    checks = container.check_image(image["image"], container.first_step_command(spec))
    assert checks["pip_check"] == "No broken requirements found."
    assert checks["imports"].split()[0].startswith("2.") and checks["uid"] == "1000"
    assert checks["step_preamble"] == "ok"
    with pytest.raises(ConfigError, match="podman run failed"):  # no network in there
        container.run_in_image(image["image"], "python3", "-c",
                               "import urllib.request; urllib.request.urlopen("
                               "'https://pypi.org', timeout=5)")


@pytest.mark.slow
def test_the_demo_pipeline_runs_in_containers_end_to_end(image, tmp_path):
    """The same run as the subprocess runner's, every step in the image: promoted on the
    first run, and the host holds the same kinds of artifacts, written by the image's
    non-root user."""
    from pipeline.local_run import run_local

    summary = run_local(str(tmp_path), runner="container")
    assert summary["gate"]["decision"] == "promote", summary["gate"]
    assert set(summary["artifacts"]) == {"run", "examples", "trained_model", "saved_model",
                                         "evaluation"}
    saved_model = Path(summary["artifacts"]["saved_model"])
    assert (saved_model / "saved_model.pb").exists()
    assert json.loads((saved_model / "export_metadata.json").read_text())["tensorflow"]
    version = tmp_path / "registry" / "demo" / "versions" / "1"
    assert (version / "saved_model.pb").exists() and version.stat().st_uid == 1000
    assert Path(summary["report"]).exists()


def test_a_machine_without_podman_gets_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="podman and debootstrap not found: `make "
                                          "image-local` installs them"):
        container.require_tools()


def test_the_image_tag_follows_the_sources():
    assert container.image_tag() == container.image_tag()
    assert container.image_tag() != container.image_tag("requirements-runtime.lock")
    assert os.path.basename(container.CONF) == "containers.conf"


@pytest.mark.slow
def test_the_data_steps_beam_workers_in_the_image_need_no_file_of_the_step(
        image, s3_bucket, s3_endpoint, demo_dir, examples_dir, tmp_path):
    """The data step with its SDK workers in the image, the worker pool a Flink or Spark
    task manager runs beside it on Kubernetes: they share no file with this process, so
    all they read and write goes through S3 (moto's server): the source, the output and
    Beam's --temp_location. The examples are the in-process run's, image by image."""
    from components.common import outputs, storage
    from components.common.errors import RunFailed
    from components.common.examples import STATS_FILE, shard_files
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run as prepare
    from tests import s3_server
    from tests.beam_services import PortableBeam

    for path in sorted(p for p in demo_dir.rglob("*") if p.is_file()):
        storage.write_bytes(f"{s3_bucket}/demo/{path.relative_to(demo_dir)}", path.read_bytes())
    beam = PortableBeam(tmp_path, workers=2, image=image["image"],
                        image_env={**s3_server.CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3_endpoint})
    args = (*beam.args, f"--temp_location={s3_bucket}/beam-temp")
    try:
        prepare(PrepareConfig(source=f"{s3_bucket}/demo", output=f"{s3_bucket}/examples",
                              beam_args=args))
        with pytest.raises(RunFailed, match=r"wrote 0 of \d+ shards where this step can read"):
            prepare(PrepareConfig(source=f"{s3_bucket}/demo", output=str(tmp_path / "local"),
                                  beam_args=args))  # the workers' own disks: lost, and said
        assert not outputs.is_complete(str(tmp_path / "local"))
    finally:
        beam.stop()
    assert beam.jobs_done() == 4 and beam.workers_started() >= 2, beam.pool_log.read_text()
    found = json.loads(storage.read_text(f"{s3_bucket}/examples/{STATS_FILE}"))
    direct = json.loads((examples_dir / STATS_FILE).read_text())
    for key in ("labels", "split_totals", "accepted", "skipped"):
        assert found[key] == direct[key], key
    for split in ("train", "val", "test"):
        assert _images(shard_files(f"{s3_bucket}/examples", split)) == \
            _images(shard_files(str(examples_dir), split)), split
    assert not storage.list_files(f"{s3_bucket}/beam-temp"), "the step's Beam work is deleted"


def _images(shards: list[str]) -> list[tuple]:
    """(sha256, label, stored bytes) of every example in ``shards``, sorted."""
    import tensorflow as tf

    from components.common.examples import ENCODED, LABEL, SHA256, read_records

    features = (tf.train.Example.FromString(record).features.feature
                for shard in shards for record in read_records(shard))
    return sorted(tuple(feature[key].SerializeToString(deterministic=True)
                        for key in (SHA256, LABEL, ENCODED)) for feature in features)
