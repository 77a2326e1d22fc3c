# The one image every pipeline step runs in. TensorFlow's GPU image matches the lock (2.21).
FROM tensorflow/tensorflow:2.21.0-gpu

LABEL org.opencontainers.image.title="resnet-finetune" \
      org.opencontainers.image.description="Kubeflow pipeline steps that fine-tune ResNet50" \
      org.opencontainers.image.source="https://github.com/resnet-finetune/resnet-finetune" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
# Locked dependencies first: this layer is reused until requirements.lock changes.
COPY requirements.lock ./
RUN python3 -m pip install --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY components ./components
COPY pipeline ./pipeline
RUN python3 -m pip install --no-deps . \
    && useradd --create-home --uid 1000 finetune

USER 1000
ENTRYPOINT ["finetune"]
