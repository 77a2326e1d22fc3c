"""Training across pods from a pipeline's train step: the TrainJob (Kubeflow Trainer) and the
Vertex CustomJob it creates, checked against their schemas, followed and cleaned up, through
stand-ins of the Kubernetes and Vertex AI APIs whose pods are real processes here (neither
platform can run on this machine); and the compiled pipeline's wiring."""

import functools
import itertools
import json
import os
import socket
import subprocess
import sys
import time

import jsonschema
import pytest
import yaml

from components.common import storage
from components.common.errors import ConfigError, RunFailed
from components.common.kubernetes_api import KubernetesAPI
from components.container_image import DEFAULT_IMAGE
from components.train.config import TrainConfig
from components.train.pods import WORKER_COMMAND, WorkerPods, job_name, train_in_pods
from components.train.trainjob import run_trainjob, trainjob
from components.train.vertex_job import JOB_LABEL, run_custom_job, worker_pool_specs
from components.train.workers import JOBSET_VARIABLE, jobset_tf_config
from pipeline import profiles
from tests.conftest import TINY_TRAIN
from tests.kubernetes_standin import KubernetesStandIn
from tests.test_manifests import ROOT, render

SCHEMAS = ROOT / "tests" / "schemas"


def _schema(name: str) -> dict:
    return yaml.safe_load((SCHEMAS / f"trainer-v1alpha1-{name}.yaml").read_text())


def _pods(profile: str, **overrides) -> WorkerPods:
    overrides.setdefault("training", "jobs")
    return WorkerPods.from_json(profiles.load(profile, overrides).worker_pods())


def test_each_profile_says_where_workers_run():
    assert WorkerPods.from_json(profiles.load("kubeflow").worker_pods(local=True)) == \
        WorkerPods(backend="local")
    assert WorkerPods.from_json("") == WorkerPods(backend="pod"), "a DAG that gives none"
    assert _pods("kubeflow", training="step").backend == _pods("vertex", training="step"
                                                               ).backend == "pod"
    gke = _pods("gke", gpus=2, env_secret="s3-keys")
    assert (gke.backend, gke.accelerator, gke.gpus) == ("kubeflow", "nvidia.com/gpu", 2)
    assert gke.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert gke.env_secret_keys == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    vertex = _pods("vertex", project="p", region="europe-west4")
    assert (vertex.backend, vertex.machine_type, vertex.accelerator) == (
        "vertex", "a3-highgpu-1g", "NVIDIA_H100_80GB")
    assert _pods("vertex", accelerator="NVIDIA_L4", gpus=4).machine_type == "g2-standard-48"
    assert _pods("vertex", gpus=0).machine_type == "n1-standard-8"
    with pytest.raises(ConfigError, match="no known Vertex machine holds 3 NVIDIA_H100_80GB; "
                                          "set machine_type"):
        _pods("vertex", gpus=3)
    with pytest.raises(ConfigError, match="machine_type is a Vertex AI setting"):
        profiles.load("kubeflow", {"machine_type": "a3-highgpu-1g"})


def test_job_names_are_dns_labels_short_enough_for_jobset_pod_names():
    for run_id, workers in itertools.product(
            ("3f2a9c1e-0b6d-4e52-9d8e-2a7c41f0b9aa", "Nightly_Run.42" * 9, "---"),
            (2, 10, 11, 100, 1000)):
        name = job_name(run_id, workers)
        assert name == job_name(run_id, workers), "the same on every retry"
        assert len(f"{name}-node-0-{workers - 1}-abcde") <= 63, "JobSet's longest pod name"
        jsonschema.validate({"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                             "metadata": {"name": name},
                             "spec": {"runtimeRef": {"name": "finetune-train"}}},
                            _schema("trainjob"))
    assert job_name("a", 2) != job_name("b", 2)


def test_the_trainjob_validates_against_trainers_types():
    pods = _pods("gke", env_secret="s3-keys", env=(("AWS_ENDPOINT_URL", "http://minio:9000"),))
    job = trainjob("finetune-run-1-0a1b2c3d", [*WORKER_COMMAND, "c", "r"], pods, 4)
    jsonschema.validate(job, _schema("trainjob"))
    spec = job["spec"]
    assert spec["runtimeRef"] == {"name": "finetune-train", "apiGroup": "trainer.kubeflow.org",
                                  "kind": "TrainingRuntime"}
    assert spec["trainer"]["numNodes"] == 4
    assert spec["trainer"]["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "1"}
    assert {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {
        "name": "s3-keys", "key": "AWS_SECRET_ACCESS_KEY"}}} in spec["trainer"]["env"]
    [override] = spec["podTemplateOverrides"]
    assert override["targetJobs"] == [{"name": "node"}]
    assert override["spec"]["serviceAccountName"] == "finetune-runner"
    assert override["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    for broken in ({**job, "spec": {**spec, "podSpecOverrides": []}},  # Trainer v2.0's name
                   {**job, "spec": {**spec, "trainer": {**spec["trainer"], "numNodes": 0}}},
                   {**job, "metadata": {"name": "Finetune_1"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, _schema("trainjob"))


def test_the_trainer_overlay_installs_the_runtime_the_step_names():
    documents = render("overlays/trainer")
    [runtime] = [d for d in documents if d["kind"] == "TrainingRuntime"]
    jsonschema.validate(runtime, _schema("trainingruntime"))
    assert runtime["metadata"]["name"] == WorkerPods().runtime
    [job] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    [container] = job["template"]["spec"]["template"]["spec"]["containers"]
    assert (container["name"], container["image"]) == ("node", DEFAULT_IMAGE)
    assert container["command"] == list(WORKER_COMMAND)
    assert container["env"][0]["name"] == JOBSET_VARIABLE
    [role] = [d for d in documents if d["kind"] == "Role"
              and d["metadata"]["name"] == "finetune-trainjobs"]
    granted = {(r["resources"][0], verb) for r in role["rules"] for verb in r["verbs"]}
    assert {("trainjobs", "create"), ("trainjobs", "get"), ("trainjobs", "delete"),
            ("pods", "list"), ("pods/log", "get")} <= granted


def test_a_trainjob_pod_derives_tf_config_from_jobset_host_names():
    env = {JOBSET_VARIABLE: "finetune-run-1", "JOB_COMPLETION_INDEX": "2"}
    config = json.loads(jobset_tf_config(env, 3))
    assert config == {"cluster": {"worker": [
        f"finetune-run-1-node-0-{k}.finetune-run-1:2222" for k in range(3)]},
        "task": {"type": "worker", "index": 2}}
    for broken in ({JOBSET_VARIABLE: "x"}, {**env, "JOB_COMPLETION_INDEX": "3"}):
        with pytest.raises(ConfigError, match="needs both"):
            jobset_tf_config(broken, 3)


def test_a_pipeline_training_in_its_steps_pod_refuses_workers_before_submitting(tmp_path):
    from pipeline.cli.cluster import _check_training_placement
    from pipeline.local_run import small_arguments
    from pipeline.pipeline import compile_pipeline

    in_step = compile_pipeline(str(tmp_path / "step.yaml"), profiles.load("gke"))
    two = {"train_extra_json": json.dumps({"workers": 2})}
    with pytest.raises(ConfigError, match="workers 2: this pipeline trains in its train step's "
                                          "pod .*a profile whose training is jobs"):
        _check_training_placement(in_step, two)
    _check_training_placement(in_step, {"train_extra_json": "{}"})
    in_jobs = compile_pipeline(str(tmp_path / "jobs.yaml"), profiles.load(
        "gke", {"training": "jobs"}))
    _check_training_placement(in_jobs, two)
    with pytest.raises(ConfigError, match="workers 2: this pipeline trains in its train step"):
        train_in_pods(TrainConfig.of(examples=".", output=".", workers=2),
                      WorkerPods(backend="pod"), "gs://b/e", "gs://b/m")
    assert json.loads(small_arguments({"train_workers": 2, "weights": "none"})[
        "train_extra_json"]) == {"workers": 2}


def test_with_training_jobs_the_step_pod_holds_no_gpu(tmp_path):
    from pipeline.pipeline import compile_pipeline

    def train_container(profile) -> dict:
        documents = list(yaml.safe_load_all(open(compile_pipeline(
            str(tmp_path / f"{profile.name}.yaml"), profile))))
        executors = documents[0]["deploymentSpec"]["executors"]
        platform = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        return executors["exec-train"]["container"], platform.get("exec-train", {})

    jobs, jobs_k8s = train_container(profiles.load("gke", {"training": "jobs"}))
    step, step_k8s = train_container(profiles.load("gke"))
    assert "accelerator" in step["resources"] and "nodeSelector" in step_k8s
    assert "accelerator" not in jobs["resources"] and "nodeSelector" not in jobs_k8s
    assert jobs["resources"]["resourceCpuRequest"] == "2"


def test_pods_refuse_folders_only_this_pod_sees(examples_dir, tmp_path):
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "out"),
                         workers=2, **TINY_TRAIN)
    never = {"kubeflow": lambda *args: pytest.fail("launched")}
    with pytest.raises(ConfigError, match="the examples artifact is at /.*a path only this "
                                          "pod sees"):
        train_in_pods(cfg, WorkerPods(backend="kubeflow"), str(examples_dir),
                      "gs://b/model", never)


def test_a_retry_publishes_what_an_earlier_attempts_job_finished(examples_dir, bucket,
                                                                   tmp_path):
    """The step died after its job's chief finished: the next attempt publishes that model
    (a new job's chief would find a complete output and refuse it). Had the chief's
    summary been lost, it trains again."""
    model_uri = storage.join(bucket, "train", "trained_model")
    shared = f"{model_uri}.workers"
    for name, text in (("model/_SUCCESS", ""), ("model/model.keras", "weights"),
                       ("result.json", json.dumps({"epochs_run": 3}))):
        storage.write_text(storage.join(shared, name), text)
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "out"), workers=2,
                         run_id="r")
    never = {"kubeflow": lambda *args: pytest.fail("a second job was started")}
    pods = WorkerPods(backend="kubeflow")
    assert train_in_pods(cfg, pods, storage.join(bucket, "e"), model_uri, never) == {
        "epochs_run": 3}
    assert (tmp_path / "out" / "model.keras").read_text() == "weights"
    assert not storage.is_dir(shared)

    storage.write_text(storage.join(shared, "model", "_SUCCESS"), "")
    launched = []

    def chief(name, command, pods, workers, shared):
        launched.append(storage.exists(storage.join(shared, "model", "_SUCCESS")))
        assert command[-1] == storage.join(shared, "heartbeat"), command
        assert time.time() - float(storage.read_text(command[-1])) < 30, "the step beats"
        storage.write_text(storage.join(shared, "model", "_SUCCESS"), "")
        storage.write_text(command[-2], json.dumps({"epochs_run": 1}))  # the result
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "again"),
                         workers=2, run_id="r")
    assert train_in_pods(cfg, pods, storage.join(bucket, "e"), model_uri,
                         {"kubeflow": chief}) == {"epochs_run": 1}
    assert launched == [False], "the summary-less model was cleared, then trained again"


def test_workers_stop_once_the_step_that_started_them_is_gone(tmp_path):
    """The step's heartbeat is the workers' dead man's switch: a step killed outright (its
    pod's finally never ran) leaves no job training for nobody. Judged by when the beat
    last changed on the worker's own clock: the step's clock may be off by hours."""
    from components.train.workers import watch_launcher

    beat, exits = tmp_path / "heartbeat", []
    beat.write_text(str(time.time() - 7200))  # the step's clock two hours behind
    watching = watch_launcher(str(beat), stale_after_s=1.0, every_s=0.1, exit=exits.append)
    for i in range(12):  # a step that beats (and once, a torn beat) keeps it going
        time.sleep(0.15)
        beat.write_text("" if i == 5 else str(i))
    assert not exits and watching.is_alive()
    watching.join(timeout=5)  # no more beats: it ends the process
    assert exits == [1] and not watching.is_alive()


@pytest.fixture
def cluster():
    standin = KubernetesStandIn(secrets={"s3-keys": {"TOKEN": "t0k3n"}})
    yield standin, KubernetesAPI(standin.url, standin.namespace)
    standin.stop()


def _script(code: str) -> list[str]:
    return ["python", "-c", code]


NODE_SCRIPT = ("import os, sys, time\n"
               "k = int(os.environ['JOB_COMPLETION_INDEX'])\n"
               "for i in range(3):\n"
               "    print(f'step {i} of node {k}', flush=True); time.sleep(0.3)\n"
               "print('secret', os.environ['TOKEN'], flush=True)\n"
               "sys.exit(int(os.environ.get('FAIL_NODE', '-1') == str(k)) * 3)\n")


def test_a_trainjob_is_created_followed_and_deleted(cluster, capfd, caplog):
    caplog.set_level("INFO")
    standin, api = cluster
    pods = WorkerPods(backend="kubeflow", image="img", cpu="1", memory="1G",
                      env_secret="s3-keys", env_secret_keys=("TOKEN",), poll_seconds=0.2)
    earlier = trainjob("finetune-x", _script("import time; time.sleep(60)"), pods, 1)
    api.call("POST", "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs",
             earlier)  # what an earlier attempt of the step left running
    run_trainjob("finetune-x", _script(NODE_SCRIPT), pods, 2, api=api)
    err = capfd.readouterr().err
    for k in (0, 1):
        lines = [line for line in err.splitlines() if line.startswith(f"[node {k}] ")]
        assert lines == [f"[node {k}] step {i} of node {k}" for i in range(3)] + [
            f"[node {k}] secret t0k3n"], "each line once, in order"
    deleted = standin.sent("DELETE", "/trainjobs/finetune-x")
    assert len(deleted) == 2 and deleted[0]["query"] == {"propagationPolicy": "Foreground"}
    created = [r for r in standin.sent("POST", "/trainjobs") if r["body"]["spec"]["trainer"][
        "command"][-1] == NODE_SCRIPT]
    assert standin.requests.index(created[0]) > standin.requests.index(deleted[0]), \
        "the earlier attempt's job is deleted before the new one starts"
    assert created[0]["body"]["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Pod", "name": socket.gethostname(),
        "uid": "0c2f6a4e-step-pod", "blockOwnerDeletion": False}], "the step's pod owns it"
    assert "node 1 (finetune-x-node-0-1-x7k2p): Pending (0/3 nodes are available: 3 " \
           "Insufficient nvidia.com/gpu.)" in caplog.text, "why a node waits is said"
    assert not standin.jobs or standin.deleting


def test_a_failed_trainjob_says_which_node_and_its_last_words(cluster):
    standin, api = cluster
    pods = WorkerPods(backend="kubeflow", image="img", env={"FAIL_NODE": "1"},
                      env_secret="s3-keys", env_secret_keys=("TOKEN",), poll_seconds=0.2)
    with pytest.raises(RunFailed, match=r"TrainJob finetune-y failed \(FailedJobs: .*node 1.*"
                                        r"secret t0k3n.*resumes from the last epoch's backup"):
        run_trainjob("finetune-y", _script(NODE_SCRIPT), pods, 2, api=api)
    assert "finetune-y" in standin.deleting, "a failed job is deleted too"


def test_a_stopped_step_deletes_its_trainjob(cluster, tmp_path):
    """SIGTERM (a cancelled run, the step's timeout) reaches the cleanup."""
    standin, api = cluster
    code = ("import sys; from components.common.kubernetes_api import KubernetesAPI; "
            "from components.train.pods import WorkerPods, exit_on_sigterm; "
            "from components.train.trainjob import run_trainjob\n"
            "with exit_on_sigterm():\n"
            f"    run_trainjob('finetune-s', ['python', '-c', 'import time; time.sleep(60)'], "
            f"WorkerPods(backend='kubeflow', image='img', poll_seconds=0.2), 1, "
            f"api=KubernetesAPI({standin.url!r}, {standin.namespace!r}))")
    step = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while "finetune-s" not in standin.jobs:
        assert step.poll() is None and time.monotonic() < deadline, step.communicate()[1]
        time.sleep(0.1)
    step.terminate()
    assert step.wait(timeout=30) != 0
    said = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in standin.requests]
    assert ("DELETE", "finetune-s") in said[said.index(("POST", "trainjobs")):], \
        step.communicate()[1][-2000:]
    assert standin.jobs["finetune-s"]["nodes"][0].phase == "Failed", "its pod is stopped"


def test_a_trainjob_pod_trains_as_the_rank_its_host_name_gives(monkeypatch, tmp_path):
    """The worker entry point derives TF_CONFIG from what the runtime and Kubernetes set,
    before training; as a non-chief it writes no result."""
    import components.train.run
    from components.train import workers

    seen = {}

    def run(cfg):
        seen.update(workers=cfg.runtime.workers, tf_config=json.loads(os.environ["TF_CONFIG"]))
        return {"epochs_run": 1}
    monkeypatch.setattr(components.train.run, "run", run)
    monkeypatch.setattr(workers, "watch_launcher", lambda uri: seen.update(watched=uri))
    monkeypatch.setenv("TF_CONFIG", "")  # restored to what it was (unset) afterwards
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.setenv(JOBSET_VARIABLE, "finetune-r")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"examples": "gs://b/e", "output": "gs://b/m", "workers": 2}))
    workers._main(str(config), str(tmp_path / "result.json"), str(tmp_path / "heartbeat"))
    assert seen["workers"] == 2 and seen["watched"] == str(tmp_path / "heartbeat")
    assert seen["tf_config"]["task"] == {"type": "worker", "index": 1}
    assert seen["tf_config"]["cluster"]["worker"][0] == "finetune-r-node-0-0.finetune-r:2222"
    assert not (tmp_path / "result.json").exists(), "only the chief writes the result"


def test_a_trainjob_the_api_refuses_says_why(cluster):
    standin, api = cluster
    pods = WorkerPods(backend="kubeflow", image="img", runtime="torch-distributed")
    with pytest.raises(RunFailed, match="HTTP 422 .*TrainingRuntime torch-distributed not "
                                        "found"):
        run_trainjob("finetune-z", _script("pass"), pods, 2, api=api)


def test_a_custom_job_runs_a_chief_pool_and_a_worker_pool(vertex_standin):
    pods = WorkerPods(backend="vertex", image="img", gpus=1, accelerator="NVIDIA_H100_80GB",
                      machine_type="a3-highgpu-1g", project="p", region="europe-west4",
                      labels={"team": "vision"}, env={"A": "1"}, poll_seconds=0.2)
    code = ("import json, os; t = json.loads(os.environ['TF_CONFIG']); "
            "assert os.environ['A'] == '1'; print(t['task']['type'], t['task']['index'])")
    run_custom_job("finetune-v", _script(code), pods, 3, "gs://b/m.workers")
    [created] = vertex_standin.posted("/customJobs")
    spec = created["body"]["jobSpec"]
    assert [int(p["replicaCount"]) for p in spec["workerPoolSpecs"]] == [1, 2]
    assert spec["workerPoolSpecs"][0]["machineSpec"]["machineType"] == "a3-highgpu-1g"
    assert spec["baseOutputDirectory"] == {"outputUriPrefix": "gs://b/m.workers/vertex"}
    assert created["body"]["labels"] == {"team": "vision", JOB_LABEL: "finetune-v"}
    [job] = vertex_standin.custom_jobs.values()
    said = sorted(job["nodes"][i].lines[0][1] for i in range(3))
    assert said == ["chief 0", "worker 0", "worker 1"]
    schema = yaml.safe_load((SCHEMAS / "vertex-v1-customjob.yaml").read_text())
    jsonschema.validate(created["body"], schema)  # as the stand-in did, before running it
    pools = spec["workerPoolSpecs"]
    for broken in ({**created["body"], "jobSpec": {**spec, "workerPoolSpec": pools}},
                   {**created["body"], "jobSpec": {**spec, "workerPoolSpecs": pools[::-1]}},
                   {**created["body"], "labels": {"Team": "vision"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    assert [p["replica_count"] for p in worker_pool_specs(["c"], pods, 1)] == [1], \
        "one worker: a chief pool alone"


def test_a_failed_custom_job_fails_the_step_and_a_retry_cancels_the_earlier_one(
        vertex_standin):
    pods = WorkerPods(backend="vertex", image="img", machine_type="n1-standard-8",
                      project="p", region="europe-west4", poll_seconds=0.2)
    fail_worker = ("import json, os, sys; t = json.loads(os.environ['TF_CONFIG']); "
                   "sys.exit(4 if t['task']['type'] == 'worker' else 0)")
    with pytest.raises(RunFailed, match=r"ended JOB_STATE_FAILED: The replica workerpool1-0 "
                                        r"exited with a non-zero status of 4.*resumes"):
        run_custom_job("finetune-w", _script(fail_worker), pods, 2, "gs://b/w")
    from google.cloud import aiplatform

    aiplatform.init(project="p", location="europe-west4")
    left = aiplatform.CustomJob(display_name="finetune-w", worker_pool_specs=[{
        "machine_spec": {"machine_type": "n1-standard-8"}, "replica_count": 1,
        "container_spec": {"image_uri": "img", "command": _script("import time; "
                                                                  "time.sleep(60)")}}],
        staging_bucket="gs://b/w", labels={JOB_LABEL: "finetune-w"})
    left.submit()  # an earlier attempt's job, still running
    run_custom_job("finetune-w", _script("pass"), pods, 2, "gs://b/w")
    assert vertex_standin.sent("POST", f"{left.name}:cancel")
    last_read = max(i for i, r in enumerate(vertex_standin.requests)
                    if r["method"] == "GET" and r["path"].endswith(f"/customJobs/{left.name}"))
    created = [i for i, r in enumerate(vertex_standin.requests)
               if r["method"] == "POST" and r["path"].endswith("/customJobs")]
    assert vertex_standin.custom_jobs[left.resource_name]["cancelled"] >= 3 and \
        last_read < created[-1], "the earlier job had ended (CANCELLED) before the new one"


def _examples_on(bucket: str, examples_dir) -> str:
    uri = storage.join(bucket, "run-1", "prepare-data", "examples")
    storage.copy_tree(str(examples_dir), uri)
    return uri


def _train_across(backend: str, launcher, bucket: str, examples_dir, tmp_path) -> dict:
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "trained_model"),
                         workers=2, run_id="run-1", backup_dir=storage.join(bucket, "backups"),
                         **TINY_TRAIN)
    model_uri = storage.join(bucket, "run-1", "train", "trained_model")
    pods = WorkerPods(backend=backend, image="img", poll_seconds=0.5, project="p",
                      region="europe-west4", machine_type="n1-standard-8",
                      env={"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]})
    summary = train_in_pods(cfg, pods,
                            _examples_on(bucket, examples_dir), model_uri, {backend: launcher})
    assert summary["epochs_run"] == 1
    assert (tmp_path / "trained_model" / "_SUCCESS").exists()
    assert (tmp_path / "trained_model" / "model.keras").exists()
    assert not storage.is_dir(f"{model_uri}.workers"), "the shared folder is removed"
    assert not storage.is_dir(storage.join(bucket, "backups", "run-1")), "and the backup"
    return summary


@pytest.mark.slow
def test_the_train_step_trains_across_trainjob_pods(cluster, bucket, examples_dir, tmp_path,
                                                   capfd):
    standin, api = cluster
    _train_across("kubeflow", functools.partial(run_trainjob, api=api), bucket, examples_dir,
                  tmp_path)
    err = capfd.readouterr().err
    assert "[node 1]" in err and "'workers': 2" in err
    [created] = standin.sent("POST", "/trainjobs")
    assert created["body"]["spec"]["trainer"]["numNodes"] == 2


@pytest.mark.slow
def test_the_train_step_trains_across_a_vertex_custom_job(vertex_standin, bucket, examples_dir,
                                                         tmp_path):
    _train_across("vertex", run_custom_job, bucket, examples_dir, tmp_path)
    [job] = vertex_standin.custom_jobs.values()
    chief_said = "\n".join(line for _, line in job["nodes"][0].lines)
    assert "'workers': 2" in chief_said, chief_said[-2000:]


@pytest.mark.slow
def test_a_killed_node_fails_the_trainjob_and_the_retried_step_resumes_from_the_backup(
        cluster, bucket, examples_dir, tmp_path, capfd):
    """A node dies mid-training: the TrainJob fails, the step says so and deletes it; the
    step's retry (the same call) starts a new job whose nodes resume from the backup on
    storage, the non-chief from the chief's copy, and trains only the epochs left."""
    import threading

    standin, api = cluster
    backups = storage.join(bucket, "backups")
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "trained_model"),
                         workers=2, run_id="night-2", backup_dir=backups,
                         **{**TINY_TRAIN, "epochs": 3, "steps_per_epoch": 4})
    pods = WorkerPods(backend="kubeflow", image="img", poll_seconds=0.3,
                      env={"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]})
    examples = _examples_on(bucket, examples_dir)
    model_uri = storage.join(bucket, "run", "train", "trained_model")
    launch = {"kubeflow": functools.partial(run_trainjob, api=api)}
    # The checkpoint's metadata is the last file of an epoch's mirror to storage.
    metadata = storage.join(backups, "night-2", "phase1", "training_metadata.json")

    def kill_node_1_after_two_epochs():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if storage.exists(metadata) and json.loads(storage.read_text(metadata))[
                    "epoch"] == 2:
                [job] = standin.jobs.values()
                job["nodes"][1].process.kill()
                return
            time.sleep(0.2)
    killer = threading.Thread(target=kill_node_1_after_two_epochs, daemon=True)
    killer.start()
    with pytest.raises(RunFailed, match=r"failed \(FailedJobs.*resumes from the last epoch's "
                                        r"backup"):
        train_in_pods(cfg, pods, examples, model_uri, launch)
    killer.join(timeout=5)
    capfd.readouterr()

    summary = train_in_pods(cfg, pods, examples, model_uri, launch)
    err = capfd.readouterr().err
    assert summary["epochs_run"] == 3
    assert "[node 1]" in err and "resuming from the backup" in err, err[-3000:]
    assert "progress: epoch 2/3" not in err, "the finished epochs were trained again"
    assert "progress: epoch 3/3" in err
    epochs = json.loads((tmp_path / "trained_model" / "history.json").read_text())
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert not storage.is_dir(storage.join(backups, "night-2")), "no backup left"
