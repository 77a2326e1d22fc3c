"""What only a cluster honours: accelerators, resources, scheduling, retries, caching."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes

KUBEFLOW_GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class PlatformConfig:
    accelerator: str = KUBEFLOW_GPU  # or a Vertex name such as NVIDIA_H100_80GB
    gpus: int = 1
    train_cpu: str = "8"
    train_memory: str = "32G"
    step_cpu: str = "2"
    step_memory: str = "8G"
    gpu_node_selector: tuple[tuple[str, str], ...] = (("cloud.google.com/gke-accelerator",
                                                       "nvidia-h100-80gb"),)
    train_retries: int = 3


def configure_train(task, cfg: PlatformConfig) -> None:
    """GPU node, resources and retries: training resumes from its backup on retry."""
    task.set_accelerator_type(cfg.accelerator).set_accelerator_limit(cfg.gpus)
    task.set_cpu_request(cfg.train_cpu).set_memory_request(cfg.train_memory)
    if cfg.train_retries:
        task.set_retry(num_retries=cfg.train_retries, backoff_duration="60s",
                       backoff_factor=2.0)
    for key, value in cfg.gpu_node_selector:
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    kubernetes.add_toleration(task, key=KUBEFLOW_GPU, operator="Exists", effect="NoSchedule")


def configure_step(task, cfg: PlatformConfig, cache: bool) -> None:
    task.set_cpu_request(cfg.step_cpu).set_memory_request(cfg.step_memory)
    task.set_caching_options(cache)
