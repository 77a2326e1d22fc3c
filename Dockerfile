# The one image every pipeline step runs in: a runtime lock only (no test or dev tools).
# BASE_IMAGE: any Debian bookworm image with Python 3.11 (pyproject's requires-python;
# the build asserts it). The default, for clusters, is the official slim image pinned by
# digest; `make image-local` passes a base made here with debootstrap (no registry).
# LOCK: requirements-runtime.lock carries TensorFlow's CUDA wheels (tensorflow[and-cuda],
# TensorFlow's own recipe for GPUs on Linux; the driver comes from the node);
# requirements-runtime-cpu.lock is the same lock without them, for CPU-only images.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
FROM ${BASE_IMAGE}
ARG LOCK=requirements-runtime.lock
# CA_BUNDLE: a CA bundle pip trusts while building (a TLS-inspecting proxy's); not kept.
ARG CA_BUNDLE=""

LABEL org.opencontainers.image.title="resnet-finetune" \
      org.opencontainers.image.description="Kubeflow pipeline steps that fine-tune ResNet50" \
      org.opencontainers.image.source="https://github.com/resnet-finetune/resnet-finetune" \
      org.opencontainers.image.licenses="Apache-2.0"

# The venv keeps pip away from the base's own Python (Debian's refuses system installs);
# first on PATH, its python3 is what every compiled step runs.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
# Locked, hashed dependencies first: this layer is reused until the lock changes.
COPY requirements-runtime.lock requirements-runtime-cpu.lock ./
RUN python3 -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/python3 -m pip install ${CA_BUNDLE:+--cert "$CA_BUNDLE"} --no-deps \
       --require-hashes -r "${LOCK}"

COPY pyproject.toml README.md ./
COPY components ./components
COPY pipeline ./pipeline
# Each compiled step first runs `pip install kfp==<the compiled version> --no-deps`: with
# that kfp already installed from the lock it is a no-op that needs no network. The
# project itself builds with the locked setuptools (no build isolation, no download).
RUN python3 -m pip install --no-deps --no-build-isolation . \
    && python3 -m pip check \
    && useradd --create-home --uid 1000 finetune

USER 1000
ENTRYPOINT ["finetune"]
