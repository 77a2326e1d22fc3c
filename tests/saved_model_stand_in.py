"""A stand-in for an exported SavedModel folder: a real ``saved_model.pb`` (a SavedModel
proto with a ``serving_default`` signature, distinct for each ``graph``) and a variables
index. It is what a registry checks and moves; it holds no model to run."""

from __future__ import annotations

from pathlib import Path


def write_stand_in(folder: Path, graph: str = "graph") -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    meta = proto.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.signature_def["serving_default"].method_name = graph
    (folder / "variables").mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(proto.SerializeToString())
    (folder / "variables" / "variables.index").write_bytes(b"index")
    return folder
