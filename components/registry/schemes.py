"""The registry a URI names, from one table (``SCHEMES``) that drives checking, opening,
the help texts and the errors:

- ``mlflow+http(s)://HOST:PORT``: MLflow's Model Registry;
- ``kubeflow-registry+http(s)://HOST:PORT?log=STORAGE_URI``: the Kubeflow Model Registry;
- ``vertex://projects/P/locations/L?log=gs://…[&serving_image=IMAGE]``: Vertex AI's;
- any storage URI (folder, ``gs://``, ``s3://``, ``minio://``): the storage registry.

The Kubeflow and Vertex registries keep the alias history and the run log on storage at
``log`` (they have no place for them of their own). Adding a backend is its module (a
``base.ModelRegistry``) and one row here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from components.common import storage
from components.common.errors import ConfigError
from components.registry.base import ModelRegistry
from components.registry.checks import check_model_name

VERTEX_PATH = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/?$")


def _log(uri: str, what: str) -> str:
    """The ``log`` storage URI of a Kubeflow or Vertex registry URI."""
    query = parse_qs(urlsplit(uri).query)
    if not query.get("log"):
        raise ConfigError(f"{what} {uri!r}: add ?log=STORAGE_URI (for example "
                          "?log=s3://bucket/registry-log): the alias history and the run "
                          "log are kept there")
    storage.check_uri(query["log"][0], f"{what}'s log")
    return query["log"][0]


def _kubeflow(uri: str, what: str) -> dict:
    return {"log": _log(uri, what)}


def _vertex(uri: str, what: str) -> dict:
    found = VERTEX_PATH.match(urlsplit(uri).netloc + urlsplit(uri).path)
    if not found:
        raise ConfigError(f"{what} {uri!r}: write vertex://projects/PROJECT/locations/"
                          "REGION?log=gs://BUCKET/PATH")
    image = parse_qs(urlsplit(uri).query).get("serving_image", [""])[0]
    return {"project": found["project"], "location": found["location"],
            "log": _log(uri, what), "image": image}


def _on_storage(uri: str, what: str) -> dict:
    storage.check_uri(uri, what)
    return {}


@dataclass(frozen=True)
class Scheme:
    """One kind of registry: the URI prefixes it answers, how its URI is written, its
    backend class (``module:Class``, imported on opening: it brings its client library)
    and the constructor arguments its URI gives (checked without opening anything)."""

    prefixes: tuple[str, ...]
    form: str
    backend: str
    arguments: Callable[[str, str], dict] = lambda _uri, _what: {}

    def open(self, uri: str, model_name: str, what: str) -> ModelRegistry:
        module, name = self.backend.split(":")
        return getattr(import_module(module), name)(uri, model_name,
                                                    **self.arguments(uri, what))


SCHEMES = (
    Scheme(("mlflow+http://", "mlflow+https://"), "mlflow+http(s)://HOST:PORT",
           "components.registry.mlflow_registry:MlflowRegistry"),
    Scheme(("kubeflow-registry+http://", "kubeflow-registry+https://"),
           "kubeflow-registry+http(s)://HOST:PORT?log=STORAGE_URI",
           "components.registry.kubeflow_registry:KubeflowRegistry", _kubeflow),
    Scheme(("vertex://",), "vertex://projects/P/locations/L?log=gs://BUCKET/PATH",
           "components.registry.vertex_registry:VertexRegistry", _vertex),
)
ON_STORAGE = Scheme((), f"a folder, {storage.forms()}",
                    "components.registry.storage_registry:StorageRegistry", _on_storage)
FORMS = "; ".join([ON_STORAGE.form] + [s.form for s in SCHEMES])


def scheme(uri: str) -> Scheme:
    return next((s for s in SCHEMES if uri.startswith(s.prefixes)), ON_STORAGE)


def redacted(uri: str) -> str:
    """``uri`` with any user name and password in it replaced by ``***``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def check_registry_uri(uri: str, what: str = "--registry") -> None:
    """Refuse a registry URI that no backend reads, naming the forms that work, and one
    that carries credentials (a run stores, logs and reports its parameters)."""
    if "@" in urlsplit(uri).netloc:
        raise ConfigError(
            f"{what} {redacted(uri)}: credentials in the URI would be stored with the run and "
            "shown in its logs and reports; remove them and set them as variables from a "
            "Secret (MLflow: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN; the profile's env_secret and env_secret_keys)")
    try:
        scheme(uri).arguments(uri, what)
    except storage.UnsupportedURI as err:
        if scheme(uri) is not ON_STORAGE or uri.split(":")[0].lower() in storage.SCHEMES:
            raise  # a storage URI written wrong: storage's own error says how
        raise ConfigError(f"{what} {uri!r}: unsupported scheme '{uri.split(':')[0]}:'; a "
                          f"registry is {FORMS}") from err


def open_registry(uri: str, model_name: str) -> ModelRegistry:
    """The registry behind ``uri``: every kind answers ``base.ModelRegistry`` (versions,
    aliases, rollback, the run log, a local copy of a version's SavedModel)."""
    check_registry_uri(uri, "registry")
    check_model_name(model_name)
    return scheme(uri).open(uri, model_name, "registry")
