"""What every registry backend checks before it writes, and the errors it raises: names
that are plain names, a SavedModel that is complete and servable."""

from __future__ import annotations

import re

from components.common import outputs, storage

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # run ids, model names: never '..' or a path
SAVED_MODEL_FILE = "saved_model.pb"


class RegistryError(RuntimeError):
    """A missing or corrupt registry object; the message names it."""


class ConflictError(RegistryError):
    """Another writer moved the alias first; re-read and retry on the new state."""


def check_run_id(run_id: str) -> None:
    if not NAME.match(run_id or ""):
        raise RegistryError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit")


def check_model_name(model_name: str) -> None:
    """A model name is a folder or a key in every backend: never empty, '..' or a path."""
    if not NAME.match(model_name or ""):
        raise RegistryError(f"model name {model_name!r}: use letters, digits, '.', '_' and "
                            "'-', starting with a letter or digit")


def check_saved_model(folder: str) -> None:
    """Refuse what is not a complete SavedModel with a serving signature: an export that
    did not finish, a folder without ``saved_model.pb``, or one whose graph does not parse
    or serves nothing."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    if storage.exists(storage.join(folder, outputs.STARTED_MARKER)) and \
            not outputs.is_complete(folder):
        raise RegistryError(f"{folder}: its export did not finish (no "
                            f"{outputs.COMPLETE_MARKER}); re-run export and register its output")
    graph = storage.join(folder, SAVED_MODEL_FILE)
    if not storage.exists(graph):
        raise RegistryError(f"{folder} is not a SavedModel (no {SAVED_MODEL_FILE}); register "
                            "the folder `finetune export` wrote")
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(storage.read_bytes(graph))
    except DecodeError as err:
        raise RegistryError(f"{graph} does not parse as a SavedModel ({err}); register the "
                            "folder `finetune export` wrote") from err
    if not any("serving_default" in meta.signature_def for meta in proto.meta_graphs):
        raise RegistryError(f"{folder}: the SavedModel has no serving_default signature, so "
                            "nothing could serve it; register the folder `finetune export` "
                            "wrote")


def write_attachments(folder: str, attachments: dict[str, str] | None) -> None:
    """Files about a version (name -> text, e.g. its model card) into its ``folder``."""
    for name, text in (attachments or {}).items():
        storage.write_text(storage.join(folder, name), text)
