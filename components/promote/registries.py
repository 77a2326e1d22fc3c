"""The registry a URI names: MLflow's (``mlflow+http(s)://``) or one on plain storage."""

from __future__ import annotations

from components.common import storage
from components.promote.registry import Registry

MLFLOW_SCHEMES = ("mlflow+http://", "mlflow+https://")


def check_registry_uri(uri: str, what: str = "--registry") -> None:
    """Refuse a registry URI that is neither MLflow's nor a storage URI, naming both."""
    if not uri.startswith(MLFLOW_SCHEMES):
        storage.check_uri(uri, what)


def open_registry(uri: str, model_name: str):
    """The registry behind ``uri``: both kinds answer the same methods (versions,
    aliases, rollback, the run log, a local copy of a version's SavedModel)."""
    if uri.startswith(MLFLOW_SCHEMES):
        from components.promote.mlflow_registry import MlflowRegistry

        return MlflowRegistry(uri, model_name)
    return Registry(uri, model_name)
