"""Shared fixtures: demo images, a prepared examples folder, GCS and S3 servers."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Never ask a cloud metadata server for credentials: only loopback servers exist here.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import uuid

import pytest

from tests import gcs_emulator, s3_server


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests keep what a person may want to look at after CI (screenshots):
    ``$TEST_ARTIFACTS``, or ``test-artifacts/`` in the checkout."""
    from pathlib import Path

    folder = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).parent.parent /
                  "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """A real GCS emulator on loopback; yields a client. Buckets are per test."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs_storage

    from components.common import storage

    port = gcs_emulator.free_port()
    server = gcs_emulator.start(port)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    storage.reset_clients()
    client = gcs_storage.Client(project="test", credentials=AnonymousCredentials())
    yield client
    storage.reset_clients()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    server.stop()


@pytest.fixture
def bucket(gcs):
    """A fresh bucket; yields its ``gs://`` URI."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return f"gs://{name}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API server (moto) on loopback, reached through the standard variables."""
    from components.common import storage

    server, endpoint = s3_server.start()
    patch = pytest.MonkeyPatch()
    for name, value in {**s3_server.CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}.items():
        patch.setenv(name, value)
    storage.reset_clients()
    yield endpoint
    patch.undo()
    storage.reset_clients()
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh S3 bucket; yields its ``s3://`` URI."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture
def model(tmp_path):
    """Stands in for SavedModel folders (a registry checks and moves their files): one per
    ``graph``, whose bytes differ from every other ``graph``'s."""
    from tests.saved_model_stand_in import write_stand_in

    def make(graph: str = "graph") -> str:
        folder = tmp_path / f"sm-{graph}"
        if not folder.exists():
            write_stand_in(folder, graph)
        return str(folder)
    return make


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (sqlite store, served artifacts); yields its URL."""
    from tests import mlflow_server as server

    process, url = server.start(tmp_path_factory.mktemp("mlflow"))
    yield url
    server.stop(process)


@pytest.fixture(scope="session")
def kubeflow_standin():
    """A stand-in Kubeflow Model Registry REST server (the real one needs a cluster)."""
    from tests.kubeflow_registry_standin import KubeflowRegistryStandIn

    standin = KubeflowRegistryStandIn()
    yield standin
    standin.stop()


@pytest.fixture
def vertex_standin():
    """A stand-in Vertex AI REST server, with the Vertex SDK pointed at it."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    from tests.vertex_standin import VertexStandIn

    standin = VertexStandIn()
    aiplatform.init(credentials=AnonymousCredentials(), api_endpoint=standin.url,
                    api_transport="rest")
    yield standin
    initializer.global_config.__init__()  # aiplatform.init is bound to this very object
    standin.stop()


@pytest.fixture(params=["local", "gcs", "s3"])
def any_root(request, tmp_path):
    """The same test on a local folder, the GCS emulator and the S3 server."""
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue({"gcs": "bucket", "s3": "s3_bucket"}[request.param])


@pytest.fixture
def no_directory_renames(monkeypatch):
    """Stands in for Cloud Storage FUSE, which refuses directory renames by default:
    Python-level renames of a directory raise. (TensorFlow's C++ file I/O is not covered.)"""
    import shutil

    def guard(original):
        def rename(src, dst, *args, **kwargs):
            if os.path.isdir(src):
                raise OSError(f"directory rename refused (stand-in for GCS FUSE): {src}")
            return original(src, dst, *args, **kwargs)
        return rename

    for module, name in ((os, "rename"), (os, "replace"), (os, "renames"), (shutil, "move")):
        monkeypatch.setattr(module, name, guard(getattr(module, name)))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from components.common.demo_data import write_demo_data

    out = tmp_path_factory.mktemp("demo") / "images"
    write_demo_data(str(out), classes=3, per_class=20, size=64, seed=1)
    return out


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory, demo_dir):
    """The demo images through the real data step (Beam DirectRunner)."""
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    out = tmp_path_factory.mktemp("examples") / "examples"
    run(PrepareConfig(source=str(demo_dir), output=str(out)))
    return out


TINY_TRAIN = dict(image_size=32, batch_size=8, weights="none", steps_per_epoch=2,
                  precision="float32", epochs=1, fine_tune_blocks=0)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, examples_dir):
    """A tiny real training run (32 px, 2 steps)."""
    from components.train.config import TrainConfig
    from components.train.run import run

    out = tmp_path_factory.mktemp("trained") / "model"
    run(TrainConfig.of(examples=str(examples_dir), output=str(out), **TINY_TRAIN))
    return out


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory, trained_dir, examples_dir):
    from components.export.run import run

    out = tmp_path_factory.mktemp("exported") / "saved_model"
    run(str(trained_dir), str(examples_dir), str(out))
    return out
