"""Training across processes: the cluster ``TF_CONFIG`` describes, Keras' ``fit`` under
``MultiWorkerMirroredStrategy``, and workers started on this machine.

Run as ``python -m components.train.workers CONFIG RESULT [HEARTBEAT]``, it is one worker
of a job (local processes, a Kubeflow TrainJob's pods, a Vertex CustomJob's replicas): it
trains the flat settings in the JSON file CONFIG (a path or a storage URI) and, as the
chief, writes the step's summary to RESULT; with HEARTBEAT it stops once the step that
started the job no longer keeps that file fresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

from components.common import storage
from components.common.errors import BAD_INPUT, ConfigError, RunFailed
from components.common.settings import flatten

log = logging.getLogger(__name__)
TASK_TYPES = ("chief", "worker")  # in rank order; Vertex names its first pool "chief"
JOBSET_VARIABLE = "JOBSET_NAME"  # the TrainingRuntime sets it from the pod's JobSet label
TF_PORT = 2222  # a TrainJob pod's collective port (TensorFlow's customary one)
# The pipeline step that starts a job writes a heartbeat every HEARTBEAT_S; its workers
# look every CHECK_EVERY_S and stop once it has not changed for STALE_AFTER_S.
HEARTBEAT_S, CHECK_EVERY_S, STALE_AFTER_S = 30, 60, 600


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place among the training processes: ``index`` 0 is the chief, the
    one that writes the step's artifacts."""

    workers: int = 1
    index: int = 0

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @classmethod
    def from_env(cls, environ=os.environ) -> Cluster | None:
        """The cluster of ``TF_CONFIG`` (as Vertex, Kubeflow Trainer or ``run_local``
        set it), or None without one."""
        text = environ.get("TF_CONFIG", "")
        if not text.strip():
            return None
        try:
            config = json.loads(text)
            cluster, task = config["cluster"], config["task"]
            ranks = [(kind, i) for kind in TASK_TYPES for i in range(len(cluster.get(kind, [])))]
            return cls(len(ranks), ranks.index((task["type"], int(task["index"]))))
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"TF_CONFIG {text!r}: expected a JSON object with 'cluster' "
                              "(lists of host:port under 'chief' and 'worker') and 'task' "
                              "(this process's type and index in them)") from err

    def expecting(self, workers: int) -> Cluster:
        """This cluster, when it has the ``workers`` the settings ask for."""
        if self.workers != workers:
            raise ConfigError(f"TF_CONFIG names {self.workers} training processes but "
                              f"--workers is {workers}: give every process --workers "
                              f"{self.workers}")
        return self


def jobset_tf_config(environ, workers: int) -> str:
    """``TF_CONFIG`` for a pod of a Kubeflow TrainJob: JobSet names node k's pod
    ``<jobset>-node-0-<k>`` in the subdomain ``<jobset>`` (its headless service) and tells
    each pod its k (``JOB_COMPLETION_INDEX``); the runtime gives the JobSet's name."""
    name, index = environ.get(JOBSET_VARIABLE, ""), environ.get("JOB_COMPLETION_INDEX", "")
    if not name or not index.isdigit() or int(index) >= workers:
        raise ConfigError(f"{JOBSET_VARIABLE} {name!r}, JOB_COMPLETION_INDEX {index!r}: a "
                          f"TrainJob's pod of {workers} needs both (the finetune-train "
                          "TrainingRuntime sets them); run it on that runtime")
    hosts = [f"{name}-node-0-{k}.{name}:{TF_PORT}" for k in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker",
                                                              "index": int(index)}})


def local_tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def visible_gpus() -> list[str]:
    """The GPUs this machine gives processes: ``CUDA_VISIBLE_DEVICES``, else all."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    import tensorflow as tf

    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


def gpu_shares(gpus: list[str], workers: int) -> list[dict[str, str]]:
    """Each local worker's environment for its own equal share of ``gpus`` (collectives
    refuse a GPU two workers share); nothing to set without GPUs."""
    if not gpus:
        return [{} for _ in range(workers)]
    share = len(gpus) // workers
    if not share:
        raise ConfigError(f"--workers {workers} on a machine with {len(gpus)} GPU(s): each "
                          "worker needs a GPU of its own; use --workers "
                          f"{len(gpus)} or fewer (one process alone trains on every GPU)")
    if len(gpus) % workers:
        log.warning("%d GPUs for %d workers: %d stay idle (every worker gets as many)",
                    len(gpus), workers, len(gpus) % workers)
    return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * share:(i + 1) * share])}
            for i in range(workers)]


def run_local(cfg, poll_seconds: float = 0.5) -> dict:
    """Train ``cfg`` in ``cfg.runtime.workers`` processes on 127.0.0.1, each with its share
    of the GPUs; the chief's summary. Their output is this process's, each line marked
    with its worker. When one fails before the chief finished, the others are stopped
    (the chief last) and the error says how to resume from the backup."""
    count = cfg.runtime.workers
    ports, shares = free_ports(count), gpu_shares(visible_gpus(), count)
    with tempfile.TemporaryDirectory(prefix="train-workers-") as work:
        config_file = os.path.join(work, "config.json")
        result_file = os.path.join(work, "chief.json")
        with open(config_file, "w") as f:
            json.dump(flatten(cfg), f)
        log.info("training with %d workers on 127.0.0.1 (ports %s)", count, ports)
        workers = [_Worker(i, [sys.executable, "-m", __name__, config_file, result_file],
                           {**os.environ, **shares[i], "TF_CONFIG": local_tf_config(ports, i)})
                   for i in range(count)]
        try:
            codes = _wait(workers, poll_seconds)
        finally:
            for w in reversed(workers):
                w.stop()
        failed = next((w for w in workers if codes[w.index]), None)
        if failed and codes[0] != 0:
            raise RunFailed(
                f"training worker {failed.index} of {count} exited with code "
                f"{codes[failed.index]} ({failed.last_line()}); the others were stopped. Run "
                "it again with the same --output and --backup-dir and --run-id "
                f"{cfg.runtime.run_id} to resume from the last epoch's backup")
        if failed:
            log.warning("training worker %d exited with code %d after the chief finished "
                        "(%s)", failed.index, codes[failed.index], failed.last_line())
        with open(result_file) as f:
            return json.load(f)


def _wait(workers: list[_Worker], poll_seconds: float) -> list[int | None]:
    """The workers' exit codes once all exited, or once one failed before the chief
    finished (the others' None)."""
    while True:
        codes = [w.process.poll() for w in workers]
        if all(c is not None for c in codes) or (codes[0] != 0 and any(codes)):
            return codes
        time.sleep(poll_seconds)


class _Worker:
    """One local training process, its output forwarded line by line."""

    def __init__(self, index: int, command: list[str], env: dict):
        self.index, self.lines = index, deque(maxlen=20)
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._forward, daemon=True)
        self.reader.start()

    def _forward(self) -> None:
        for line in self.process.stdout:
            if line.strip():
                self.lines.append(line.rstrip())
                sys.stderr.write(f"[worker {self.index}] {line}")

    def last_line(self) -> str:
        self.reader.join(timeout=5)
        return next((line for line in reversed(self.lines) if line.strip()), "no output")

    def stop(self, grace_seconds: float = 10) -> None:
        """Stop it if it runs: the chief is given ``grace_seconds`` to fail on its own
        (a lost peer ends its next collective), so it is not stopped mid-write."""
        if self.index == 0 and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace_seconds)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)


def check_across_workers(batch_size: int, runtime, backup: str, phases: int) -> None:
    """Refuse, on every worker alike, a global batch the replicas cannot share evenly or
    backups that would resume the workers from different points."""
    import tensorflow as tf

    if batch_size % runtime.replicas:
        raise ConfigError(f"--batch-size {batch_size} across {runtime.replicas} "
                          "replicas (workers x their GPUs): use a multiple of "
                          f"{runtime.replicas}")
    point = resume_point(backup, phases)
    points = runtime.strategy.gather(runtime.strategy.experimental_distribute_values_from_function(
        lambda _context: tf.constant([point])), axis=0).numpy().tolist()
    if len(set(points)) > 1:
        raise RunFailed(f"the training workers' backups differ (finished phases x 10000 + "
                        f"epochs, by replica: {points}); every worker resumes from the "
                        "chief's backup: give every process the same --output, --backup-dir "
                        "and --run-id")


def resume_point(backup: str, phases: int) -> int:
    """How far a backup got: its finished phases, then the epochs of the next (one number)."""
    done = 0
    while done < phases and storage.exists(storage.join(backup, f"phase{done + 1}.weights.h5")):
        done += 1
    metadata = storage.join(backup, f"phase{done + 1}", "training_metadata.json")
    epoch = json.loads(storage.read_text(metadata))["epoch"] if storage.exists(metadata) else 0
    return done * 10_000 + epoch


def fix_keras_multi_worker_fit() -> None:
    """Let Keras 3's TensorFlow ``fit`` run under ``MultiWorkerMirroredStrategy``, which it
    fails in two places (keras-team/keras#20585, still open at Keras 3.15):
    - before the first step it averages a batch eagerly across workers only to learn its
      shapes (a PerReplica conversion error), drawing it from an iterator of its own,
      which moves the shuffle on; one replica's element spec has the shapes;
    - it reduces each step's scalar logs with ``strategy.reduce(MEAN, v, axis=0)``, an
      axis a scalar does not have; the mean across replicas needs none.
    Idempotent; changes nothing for one process."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "multi_worker_fixed", False):
        return
    reduce_per_replica = trainer.reduce_per_replica

    def reduce_fixed(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            data_batch = tf.nest.map_structure(
                lambda spec: getattr(spec, "_value_specs", (spec,))[0],
                iterator._distributed_dataset.element_spec)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    reduce_fixed.multi_worker_fixed = True
    trainer.reduce_per_replica = reduce_fixed
    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build


def watch_launcher(uri: str, stale_after_s: float = STALE_AFTER_S,
                   every_s: float = CHECK_EVERY_S, exit=os._exit) -> threading.Thread:
    """End this process once the step that started its job stopped writing ``uri`` for
    ``stale_after_s`` (killed outright, its run cancelled): nobody would publish the
    model. Judged by this machine's clock alone, from when the beat last changed (an
    unreadable beat is an unchanged one), so clock skew between machines does not matter;
    a thread, so a worker waiting for a peer or downloading examples stops too. The exit
    is immediate (a collective cannot be interrupted); the backup survives it."""
    def watch():
        last, changed = None, time.monotonic()
        while True:
            time.sleep(every_s)
            try:
                beat = storage.read_text(uri)
            except Exception:  # any backend's fault: as if unchanged
                beat = last
            if beat != last:
                last, changed = beat, time.monotonic()
            elif time.monotonic() - changed > stale_after_s:
                print(f"error: the pipeline step that started this training has not written "
                      f"{uri} for {time.monotonic() - changed:.0f} s: it is gone, and no one "
                      "would publish the model; stopping, to free the machines",
                      file=sys.stderr, flush=True)
                exit(1)
                return
    watching = threading.Thread(target=watch, daemon=True, name="launcher-watch")
    watching.start()
    return watching


def _main(config_uri: str, result_uri: str, heartbeat_uri: str = "") -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from components.train.config import TrainConfig
    from components.train.run import run

    if heartbeat_uri:
        watch_launcher(heartbeat_uri)

    try:
        cfg = TrainConfig.of(**json.loads(storage.read_text(config_uri)))
        if "TF_CONFIG" not in os.environ and JOBSET_VARIABLE in os.environ:
            os.environ["TF_CONFIG"] = jobset_tf_config(os.environ, cfg.runtime.workers)
        summary = run(cfg)
    except (*BAD_INPUT, RunFailed) as err:  # one line, as `finetune` says it
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1 if isinstance(err, RunFailed) else 2)
    if Cluster.from_env().is_chief:
        storage.write_text(result_uri, json.dumps(summary))


if __name__ == "__main__":
    _main(*sys.argv[1:])
