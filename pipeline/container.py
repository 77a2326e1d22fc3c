"""The image, built and run here with podman (these machines have no Docker engine).

- The base is a Debian bookworm root file system made with debootstrap from Debian's
  package registry and turned into an image by ``podman import`` (no image registry is
  reachable); the Dockerfile builds on it as on the pinned official base.
- ``podman system service`` serves Docker's API on a socket, which the docker SDK, and so
  kfp.local's DockerRunner, drive.
- The settings podman needs on these machines (runtime runc, cgroup manager cgroupfs,
  ulimits at or below the host's, no network) are in ``containers/containers.conf``,
  read through ``CONTAINERS_CONF``; the machine's own configuration is never edited.
- ``steps_in_containers`` gives ``run-local --runner container`` the image, the mounts and
  the work folder's permissions for the image's user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from components.common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "containers" / "containers.conf"
BASE = "localhost/resnet-finetune-base:bookworm"
IMAGE = "localhost/resnet-finetune"
CPU_LOCK = "requirements-runtime-cpu.lock"
MIRROR = "http://deb.debian.org/debian"
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"  # Debian's bundle, a proxy's CA included
BUILD_INPUTS = ("Dockerfile", "pyproject.toml", "README.md", "components", "pipeline")


def podman_env(conf: Path = CONF) -> dict[str, str]:
    """This process's environment with podman reading our settings."""
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def _podman(*args: str, conf: Path = CONF, **kwargs) -> subprocess.CompletedProcess:
    """Run podman with our settings; its output as text. A failure is one ConfigError
    naming the command."""
    result = subprocess.run(["podman", *args], env=podman_env(conf), capture_output=True,
                            **kwargs)
    stdout, stderr = (out.decode(errors="replace") for out in (result.stdout, result.stderr))
    if result.returncode:
        raise ConfigError(f"podman {args[0]} failed ({result.returncode}): "
                          f"{(stderr or stdout).strip().splitlines()[-1:]}")
    return subprocess.CompletedProcess(result.args, 0, stdout, stderr)


def require_tools() -> None:
    missing = [tool for tool in ("podman", "debootstrap") if not shutil.which(tool)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not found: `make image-local` installs "
                          "them from Debian's packages")


def _exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image],
                          env=podman_env()).returncode == 0


def base_image() -> str:
    """The bookworm base (Python 3.11, venv, CA certificates), made once."""
    if _exists(BASE):
        return BASE
    with tempfile.TemporaryDirectory(prefix="bookworm-") as rootfs:
        subprocess.run(["debootstrap", "--variant=minbase",
                        "--include=python3,python3-venv,ca-certificates", "bookworm", rootfs,
                        MIRROR], check=True, stdout=subprocess.DEVNULL)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        try:
            _podman("import", "-", BASE, stdin=tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()
    return BASE


def image_tag(lock: str = CPU_LOCK) -> str:
    """The tag of the image built from these sources and ``lock``: a content hash."""
    digest = hashlib.sha256(lock.encode())
    files = [ROOT / lock] + sorted(
        p for name in BUILD_INPUTS for p in ((ROOT / name).rglob("*.py")
                                             if (ROOT / name).is_dir() else [ROOT / name]))
    for path in files:
        digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return f"{IMAGE}:{digest.hexdigest()[:12]}"


def build(lock: str = CPU_LOCK) -> dict:
    """Build the Dockerfile on the local base (cached: the dependency layer by the lock,
    the image by its tag); its tag, size and the seconds taken."""
    require_tools()
    started = time.perf_counter()
    tag = image_tag(lock)
    if not _exists(tag):
        ca = ["--volume", f"{HOST_CA}:/run/host-ca.crt:ro", "--build-arg",
              "CA_BUNDLE=/run/host-ca.crt"] if Path(HOST_CA).exists() else []
        _podman("build", "--network", "host", *ca, "--build-arg", f"BASE_IMAGE={base_image()}",
                "--build-arg", f"LOCK={lock}", "--tag", tag, "--file", "Dockerfile", str(ROOT))
    size = int(_podman("image", "inspect", tag, "--format", "{{.Size}}",
).stdout.strip())
    return {"image": tag, "size_mb": round(size / 2**20),
            "seconds": round(time.perf_counter() - started, 1)}


def run_in_image(image: str, *command: str) -> str:
    """Run ``command`` in ``image`` without network; its output."""
    return _podman("run", "--rm", "--network", "none", "--entrypoint", command[0], image,
                   *command[1:]).stdout


def check_image(image: str, step_preamble: str) -> dict:
    """What must hold inside the image, with no network: ``pip check``, the imports the
    steps need, a non-root user, and each compiled step's first command."""
    return {
        "pip_check": run_in_image(image, "python3", "-m", "pip", "check").strip(),
        "imports": run_in_image(image, "python3", "-c", "import tensorflow, kfp, tfx_bsl; "
                                "print(tensorflow.__version__, kfp.__version__)").strip(),
        "uid": run_in_image(image, "id", "-u").strip(),
        "step_preamble": run_in_image(image, "sh", "-c", step_preamble, "true") or "ok",
    }


@contextlib.contextmanager
def docker_api(work: Path, mounts: tuple[Path, ...]) -> Iterator[str]:
    """podman's Docker-compatible API on a socket in ``work`` for the duration; every
    container it starts sees ``mounts`` at their own paths. Yields the socket's URL."""
    import docker

    require_tools()
    conf = work / "containers.conf"
    volumes = ", ".join(f'"{m}:{m}"' for m in mounts)
    conf.write_text(CONF.read_text().replace("[containers]\n",
                                             f"[containers]\nvolumes = [{volumes}]\n", 1))
    url = f"unix://{work / 'podman.sock'}"
    log = work / "podman-service.log"
    with open(log, "w") as sink:
        service = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                                   env=podman_env(conf),
                                   stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(Exception):
                docker.DockerClient(base_url=url).ping()
                break
            if service.poll() is not None or time.monotonic() > deadline:
                why = log.read_text().strip()[-300:] if service.poll() is not None \
                    else "no answer in 30 s"
                raise ConfigError(f"podman's Docker API did not start on {url}: {why}")
            time.sleep(0.3)
        yield url
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def _run_container(client, image: str, command: list[str], volumes: dict, **run_args) -> int:
    """kfp.local's ``run_docker_container`` for podman's Docker API. kfp starts each step
    with auto-removal and expects Docker's 404 for a container already removed; podman
    answers 500, which fails every step that exits before its logs are read. Here the
    container is removed only after its logs and exit code are read. And as on Kubernetes,
    the step's command replaces the image's entrypoint (``finetune``) rather than being
    passed to it."""
    container = client.containers.run(image=image, entrypoint=command[:1], command=command[1:],
                                      detach=True, stdout=True, stderr=True, volumes=volumes,
                                      **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(), end="")
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def kfp_on_podman() -> Iterator[None]:
    """kfp.local's DockerRunner, made to work against podman for the duration."""
    from unittest import mock

    from kfp.local import docker_task_handler

    with mock.patch.object(docker_task_handler, "run_docker_container", _run_container):
        yield


@contextlib.contextmanager
def steps_in_containers(work: Path, arguments: dict):
    """The image (built if needed) and podman's Docker API for DockerRunner, for the
    duration; yields the image. Every local path among ``arguments`` is mounted at its
    own path (it must be readable by the image's user 1000; a weights file elsewhere is
    copied into the work folder), and what the steps write is writable by that user."""
    built = build()
    print(f"run-local: image {built['image']} ({built['size_mb']} MB, {built['seconds']} s)")
    weights = Path(arguments.get("weights", ""))
    if weights.is_file() and work not in weights.parents:  # e.g. the cache under /root
        inputs = work / "inputs"
        inputs.mkdir(exist_ok=True)
        shutil.copyfile(weights, inputs / weights.name)
        arguments["weights"] = str(inputs / weights.name)
    registry = Path(arguments["registry_uri"])
    for folder in (work, work / "pipeline-root", registry):
        folder.mkdir(parents=True, exist_ok=True)
    for written in (registry, work / "split_state.jsonl"):  # a subprocess run's too
        _writable_by_all(written)
    work.chmod(0o777)
    (work / "pipeline-root").chmod(0o777)
    paths = {work, registry} | {Path(v) for v in arguments.values()
                                if isinstance(v, str) and v.startswith("/") and Path(v).exists()}
    umask = os.umask(0)  # the folders kfp.local makes for each step's outputs too
    previous = os.environ.get("DOCKER_HOST")
    try:
        with docker_api(work, tuple(sorted(paths))) as url, kfp_on_podman():
            os.environ["DOCKER_HOST"] = url
            yield built["image"]
    finally:
        os.umask(umask)
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous


def _writable_by_all(path: Path) -> None:
    """``path`` (a file, or a folder and all in it) writable by the image's user too."""
    if path.is_file():
        path.chmod(0o666)
    for folder, _dirs, files in os.walk(path):
        Path(folder).chmod(0o777)
        for name in files:
            Path(folder, name).chmod(0o666)


def main() -> None:
    """``make image-local``: build, then check inside the image; print both."""
    import json
    import sys

    from pipeline.pipeline import compile_pipeline
    from pipeline.profiles import load

    try:
        built = build()
        with tempfile.TemporaryDirectory() as scratch:
            spec = compile_pipeline(f"{scratch}/p.yaml", load("kubeflow",
                                                               {"image": built["image"]}))
            preamble = first_step_command(spec)
        print(json.dumps({**built, "checks": check_image(built["image"], preamble)}, indent=2))
    except (ConfigError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def first_step_command(pipeline_yaml: str) -> str:
    """The shell script every compiled step runs first (the ``pip install kfp`` line)."""
    import yaml

    with open(pipeline_yaml) as handle:
        executors = next(yaml.safe_load_all(handle))["deploymentSpec"]["executors"]
    scripts = {e["container"]["command"][2] for e in executors.values()}
    if len(scripts) != 1:
        raise ConfigError(f"{pipeline_yaml}: the steps start {len(scripts)} different ways")
    return scripts.pop()


if __name__ == "__main__":
    main()
