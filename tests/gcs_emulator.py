"""A real GCS emulator over HTTP (gcp-storage-emulator) for the tests.

gcp-storage-emulator ignores ``ifGenerationMatch``. Real GCS answers HTTP 412 when the
precondition fails, and the registry's compare-and-swap relies on it, so this module
adds that enforcement to the emulator's upload handlers (under a lock, because the
emulator serves requests on several threads). ``test_storage`` proves the 412.
"""

from __future__ import annotations

import socket
import threading
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.server import create_server

_LOCK = threading.Lock()
PRECONDITION_FAILED = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [{"reason": "conditionNotMet", "domain": "global",
                    "message": "At least one of the pre-conditions you specified did not hold."}],
    }
}


def _object_name(request) -> str:
    if "name" in request.query:
        return request.query["name"][0]
    return request.data["meta"]["name"]


def _enforce_generation_match(upload):
    def wrapper(request, response, storage):
        expected = request.query.get("ifGenerationMatch")
        with _LOCK:
            if expected is not None:
                try:
                    obj = storage.get_file_obj(request.params["bucket_name"], _object_name(request))
                    current = str(obj["generation"])
                except NotFound:
                    current = "0"
                if current != expected[0]:
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    response.json(PRECONDITION_FAILED)
                    return None
            return upload(request, response, storage)

    return wrapper


objects._media_upload = _enforce_generation_match(objects._media_upload)
objects._multipart_upload = _enforce_generation_match(objects._multipart_upload)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(port: int):
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    return server
