"""The registry a URI names:

- ``mlflow+http(s)://HOST:PORT``: MLflow's Model Registry;
- ``kubeflow-registry+http(s)://HOST:PORT?log=STORAGE_URI``: the Kubeflow Model Registry;
- ``vertex://projects/P/locations/L?log=gs://…[&serving_image=IMAGE]``: Vertex AI's;
- any storage URI (folder, ``gs://``, ``s3://``): the registry on plain storage.

The Kubeflow and Vertex registries keep the alias history and the run log on storage at
``log`` (they have no place for them of their own)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from components.common import storage
from components.common.errors import ConfigError
from components.promote.registry import Registry, check_model_name

MLFLOW_SCHEMES = ("mlflow+http://", "mlflow+https://")
KUBEFLOW_SCHEMES = ("kubeflow-registry+http://", "kubeflow-registry+https://")
VERTEX_SCHEME = "vertex://"
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


def _vertex_location(uri: str, what: str) -> tuple[str, str]:
    found = VERTEX_PATH.match(urlsplit(uri).netloc + urlsplit(uri).path)
    if not found:
        raise ConfigError(f"{what} {uri!r}: write vertex://projects/PROJECT/locations/"
                            "REGION?log=gs://BUCKET/PATH")
    return found["project"], found["location"]


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
    if uri.startswith(KUBEFLOW_SCHEMES):
        _log(uri, what)
    elif uri.startswith(VERTEX_SCHEME):
        _vertex_location(uri, what)
        _log(uri, what)
    elif not uri.startswith(MLFLOW_SCHEMES):
        storage.check_uri(uri, what)


def open_registry(uri: str, model_name: str):
    """The registry behind ``uri``: every kind answers the same methods (versions,
    aliases, rollback, the run log, a local copy of a version's SavedModel)."""
    check_registry_uri(uri, "registry")
    check_model_name(model_name)
    if uri.startswith(MLFLOW_SCHEMES):
        from components.promote.mlflow_registry import MlflowRegistry

        return MlflowRegistry(uri, model_name)
    if uri.startswith(KUBEFLOW_SCHEMES):
        from components.promote.kubeflow_registry import KubeflowRegistry

        return KubeflowRegistry(uri, model_name, _log(uri, "registry"))
    if uri.startswith(VERTEX_SCHEME):
        from components.promote.vertex_registry import VertexRegistry

        project, location = _vertex_location(uri, "registry")
        image = parse_qs(urlsplit(uri).query).get("serving_image", [""])[0]
        return VertexRegistry(uri, model_name, project, location, _log(uri, "registry"), image)
    return Registry(uri, model_name)
