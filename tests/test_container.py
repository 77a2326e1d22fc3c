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
