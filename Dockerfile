# The one image every pipeline step runs in: the runtime lock only (no test or dev tools).
# Python must match pyproject's requires-python (>=3.11,<3.12). The official python:3.11
# image is 3.11 by its tag; the build asserts it, and tests/test_image.py checks that this
# tag and requires-python agree. CUDA comes as wheels through tensorflow[and-cuda]
# (TensorFlow's own recipe for GPUs on Linux); the driver comes from the node.
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="resnet-finetune" \
      org.opencontainers.image.description="Kubeflow pipeline steps that fine-tune ResNet50" \
      org.opencontainers.image.source="https://github.com/resnet-finetune/resnet-finetune" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
# Locked, hashed dependencies first: this layer is reused until the lock changes.
COPY requirements-runtime.lock ./
RUN python3 -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" \
    && python3 -m pip install --no-deps --require-hashes -r requirements-runtime.lock

COPY pyproject.toml README.md ./
COPY components ./components
COPY pipeline ./pipeline
# Each compiled step first runs `pip install kfp==<the compiled version> --no-deps`: with
# that kfp already installed from the lock it is a no-op that needs no network.
RUN python3 -m pip install --no-deps . \
    && python3 -m pip check \
    && useradd --create-home --uid 1000 finetune

USER 1000
ENTRYPOINT ["finetune"]
