"""Kubeflow wrapper of the training step."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def train(
    examples: Input[Dataset],
    config: str,
    trained_model: Output[Model],
    metrics: Output[Metrics],
    training_curves: Output[HTML],
    run_id: str = "",
    worker_pods: str = "",
):
    """Fine-tune ResNet50 with ``config`` (the run's resolved TrainConfig, JSON).

    The backup of run ``run_id`` lives in ``backup_dir/run_id`` (``backup_dir`` a stable
    URI, not the output artifact), so a retried pod of this run resumes from its last
    finished epoch and another run never does. ``worker_pods`` (the platform's, JSON) says
    where training runs: this pod (the default), a TrainJob or a Vertex CustomJob of
    ``workers`` nodes, or processes of this machine (kfp.local).
    """
    import logging

    from components.common.publish import publish
    from components.lineage.resolve import step_config
    from components.train.config import TrainConfig
    from components.train.pods import WorkerPods, train_in_pods
    from components.train.run import published

    logging.basicConfig(level=logging.INFO)
    cfg = step_config(TrainConfig, config, examples=examples.path, output=trained_model.path,
                      run_id=run_id)
    summary = train_in_pods(cfg, WorkerPods.from_json(worker_pods), examples.uri,
                            trained_model.uri)
    publish(published(summary, trained_model.path), trained_model, metrics=metrics,
            training_curves=training_curves)
