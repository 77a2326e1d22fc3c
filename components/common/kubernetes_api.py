"""The Kubernetes API as a pod calls it: the in-cluster address, the pod's service-account
token and CA, JSON over HTTPS (no client library: a step needs a handful of calls)."""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from components.common.errors import RunFailed

log = logging.getLogger(__name__)
ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class APIError(RunFailed):
    """The API refused a call; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KubernetesAPI:
    url: str
    namespace: str
    token_file: str = ""  # re-read on each call: Kubernetes rotates projected tokens
    ca_file: str = ""
    retries: int = 4  # a GET or DELETE meeting a network error, 429 or 5xx is retried

    @classmethod
    def in_cluster(cls) -> KubernetesAPI:
        """This pod's API server, token, CA and namespace."""
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get(
            "KUBERNETES_SERVICE_PORT", "443")
        if not host or not os.path.isdir(ACCOUNT):
            raise RunFailed("training on Kubeflow Trainer creates a TrainJob through the "
                            "Kubernetes API, which this process cannot reach (no "
                            "KUBERNETES_SERVICE_HOST or service-account token): run the step "
                            "in the cluster, or compile the pipeline with a profile whose "
                            "training is step")
        with open(os.path.join(ACCOUNT, "namespace")) as handle:
            namespace = handle.read().strip()
        return cls(f"https://{host}:{port}", namespace, os.path.join(ACCOUNT, "token"),
                   os.path.join(ACCOUNT, "ca.crt"))

    def call(self, method: str, path: str, body: dict | None = None, query: dict | None = None,
             text: bool = False, timeout_s: float = 30):
        """``method path`` (``{namespace}`` filled in) -> the decoded JSON, or the text."""
        attempts = self.retries + 1 if method in ("GET", "DELETE") else 1  # idempotent
        for attempt in range(1, attempts + 1):
            try:
                return self._call(method, path, body, query, text, timeout_s)
            except (APIError, OSError) as err:  # OSError: unreachable, reset, timed out
                status = getattr(err, "status", 0)
                if attempt == attempts or (status and status != 429 and status < 500):
                    raise
                log.warning("%s %s: %s; retrying", method, path, err)
                time.sleep(2 ** attempt)

    def _call(self, method: str, path: str, body, query, text: bool, timeout_s: float):
        url = self.url.rstrip("/") + path.format(namespace=self.namespace)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, method=method, data=json.dumps(body).encode()
                                         if body is not None else None)
        request.add_header("Accept", "text/plain" if text else "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token_file:
            with open(self.token_file) as handle:
                request.add_header("Authorization", f"Bearer {handle.read().strip()}")
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
                payload = response.read().decode()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            raise APIError(f"{method} {path.format(namespace=self.namespace)}: HTTP {err.code} "
                           f"{detail}", err.code) from err
        if text:
            return payload
        return json.loads(payload) if payload else {}
