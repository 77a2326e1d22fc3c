# The commands a user types. `make run` and `make test` set up everything they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)
IMAGE ?= ghcr.io/resnet-finetune/resnet-finetune:0.1.0
PLATFORM ?= kubeflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install browser containers run test test-fast lint compile bench image image-local lock clean golden

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install  ## the whole pipeline locally (kfp.local) on generated demo data
	$(BIN)/finetune run-local $(ARGS)

browser:  ## Debian's chromium: the tests render the run report in it
	command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

containers:  ## Debian's podman and debootstrap: the image is built and run here with them
	command -v podman >/dev/null && command -v debootstrap >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  podman debootstrap runc)

test: install browser containers  ## lint, then every test (slow end-to-end ones included)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check components pipeline tests benchmarks
	$(BIN)/hadolint Dockerfile

compile: install
	$(BIN)/finetune compile --platform $(PLATFORM) --output pipeline.yaml --image $(IMAGE)

bench: install
	for name in prepare_data_scaling input_pipeline train_throughput gpu_train export_latency \
	  batch_inference run_local_overhead; do $(BIN)/python -m benchmarks.$$name || exit 1; done

image-local: install containers  ## build the image here (podman, a debootstrap base, the CPU lock)
	$(BIN)/python -m pipeline.container

image:  ## build and push the one image all steps run in (needs a Docker engine)
	docker build -t $(IMAGE) .
	docker push $(IMAGE)

LOCK_TARGET := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu

lock:  ## re-resolve both locks after changing pyproject.toml: the image's, then the dev one on it
	$(BIN)/uv pip compile pyproject.toml --extra runtime --extra gpu --generate-hashes \
	  $(LOCK_TARGET) -o requirements-runtime.lock
	$(BIN)/uv pip compile pyproject.toml --extra runtime --generate-hashes \
	  -c requirements-runtime.lock $(LOCK_TARGET) -o requirements-runtime-cpu.lock
	$(BIN)/uv pip compile pyproject.toml --extra runtime --extra dev \
	  -c requirements-runtime.lock $(LOCK_TARGET) -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

golden: install  ## refresh the reviewed copy of the compiled pipeline after a deliberate change
	for profile in kubeflow gke vertex; do \
	  $(BIN)/finetune compile --platform $$profile --image $(IMAGE) \
	  --output tests/golden/pipeline-$$profile.yaml \
	  || exit 1; done
