"""Applies a platform profile to the DAG's tasks: what only a cluster honours."""

from __future__ import annotations

from kfp import kubernetes

from pipeline.profiles import Profile

ACCESS_LABEL = "access-ml-pipeline"  # multi-user Kubeflow's PodDefault for the KFP API


def _environment(task, profile: Profile) -> None:
    for name, value in profile.env:
        task.set_env_variable(name, value)
    if profile.env_secret:
        kubernetes.use_secret_as_env(task, profile.env_secret,
                                     {key: key for key in profile.env_secret_keys})


def _security(task, profile: Profile) -> None:
    """Non-root as the image's user; KFP's compiler (2.16+) adds no privilege escalation,
    all capabilities dropped and the RuntimeDefault seccomp profile to every step."""
    if profile.run_as_user:
        kubernetes.set_security_context(task, run_as_user=profile.run_as_user,
                                        run_as_group=profile.run_as_user, run_as_non_root=True)


def _resources(task, profile: Profile, cpu: str, memory: str) -> None:
    # Vertex AI picks the machine from limits and ignores requests (kubeflow/pipelines#8038).
    if profile.is_vertex:
        task.set_cpu_limit(cpu).set_memory_limit(memory)
    else:
        task.set_cpu_request(cpu).set_memory_request(memory)


def configure_train(task, profile: Profile) -> None:
    """GPU node, resources and retries: training resumes from its backup on retry. With
    ``training: jobs`` the GPUs and placement are the TrainJob's or CustomJob's; the
    step's pod, which starts and follows that job, is an ordinary step's."""
    in_jobs = profile.training == "jobs"
    if in_jobs:
        _resources(task, profile, profile.step_cpu, profile.step_memory)
    else:
        if profile.gpus:
            task.set_accelerator_type(profile.accelerator_resource)
            task.set_accelerator_limit(profile.gpus)
        _resources(task, profile, profile.train_cpu, profile.train_memory)
    if profile.train_retries:
        task.set_retry(num_retries=profile.train_retries, backoff_duration="60s",
                       backoff_factor=2.0)
    _environment(task, profile)
    _security(task, profile)
    if profile.is_vertex:
        return
    if not in_jobs:
        for key, value in sorted(profile.train_node_selector.items()):
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        for toleration in profile.tolerations:
            kubernetes.add_toleration(task, **dict(toleration))
    if profile.train_timeout_s:
        kubernetes.set_timeout(task, profile.train_timeout_s)


def configure_step(task, profile: Profile, cache: bool) -> None:
    _resources(task, profile, profile.step_cpu, profile.step_memory)
    task.set_caching_options(cache)
    _environment(task, profile)
    _security(task, profile)
    if profile.step_timeout_s and not profile.is_vertex:
        kubernetes.set_timeout(task, profile.step_timeout_s)


def configure_exit_handler(task, profile: Profile) -> None:
    """The step that records the run. On KFP it reads its run's failure from the KFP API:
    the ``access-ml-pipeline`` label asks multi-user Kubeflow's PodDefault (the
    multi-user overlay installs it) for a token that API accepts."""
    configure_step(task, profile, cache=False)
    if not profile.is_vertex:
        kubernetes.add_pod_label(task, ACCESS_LABEL, "true")
