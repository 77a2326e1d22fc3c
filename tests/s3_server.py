"""A real S3 API server over HTTP on loopback: moto's server mode (``moto[server]``).

moto answers ``PutObject`` with ``If-None-Match: *`` by HTTP 412 when the key exists,
as AWS S3 and MinIO do; ``test_storage`` proves it on the wire.
"""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def start() -> tuple[ThreadedMotoServer, str]:
    """Start the server on a free loopback port; returns it and its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"
