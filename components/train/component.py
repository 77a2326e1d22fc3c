"""Kubeflow wrapper of the training step."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE)
def train(
    examples: Input[Dataset],
    trained_model: Output[Model],
    metrics: Output[Metrics],
    training_curves: Output[HTML],
    image_size: int = 224,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    bn_policy: str = "frozen",
    clip: str = "autoclip",
    clip_threshold: float = -1.0,
    weights: str = "imagenet",
    seed: int = 0,
    backup_dir: str = "",
    run_id: str = "",
    extra_json: str = "{}",
):
    """Fine-tune ResNet50; ``extra_json`` holds any other TrainConfig setting (validated first).

    ``backup_dir`` should be a stable URI (not the output artifact): the backup of run
    ``run_id`` lives in ``backup_dir/run_id``, so a retried pod of this run resumes from
    its last finished epoch and another run never does.
    """
    import logging

    from components.common.publish import publish
    from components.common.settings import from_parameters
    from components.train.config import TrainConfig
    from components.train.run import published, run

    logging.basicConfig(level=logging.INFO)
    cfg = from_parameters(
        TrainConfig, "train_extra_json", extra_json, examples=examples.path,
        output=trained_model.path, backup_dir=backup_dir, run_id=run_id, image_size=image_size,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, bn_policy=bn_policy,
        clip=clip, clip_threshold=clip_threshold, weights=weights, seed=seed)
    summary = run(cfg)
    publish(published(summary, trained_model.path), trained_model, metrics=metrics,
            training_curves=training_curves)
