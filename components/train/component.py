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
    clip: str = "global_norm",
    clip_threshold: float = 1.0,
    weights: str = "imagenet",
    seed: int = 0,
    backup_dir: str = "",
    run_id: str = "",
    extra_json: str = "{}",
):
    """Fine-tune ResNet50; ``extra_json`` holds any other TrainConfig field (validated first).

    ``backup_dir`` should be a stable URI (not the output artifact): the backup of run
    ``run_id`` lives in ``backup_dir/run_id``, so a retried pod of this run resumes from
    its last finished epoch and another run never does.
    """
    import logging
    import shutil

    from components.common.contract import read_json
    from components.common.settings import from_parameters
    from components.train.config import TrainConfig
    from components.train.contract import CONFIG_FILE, CURVES_FILE
    from components.train.run import run

    logging.basicConfig(level=logging.INFO)
    cfg = from_parameters(
        TrainConfig, "train_extra_json", extra_json, examples=examples.path,
        output=trained_model.path, backup_dir=backup_dir, run_id=run_id, image_size=image_size,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, bn_policy=bn_policy,
        clip=clip, clip_threshold=clip_threshold, weights=weights, seed=seed)
    summary = run(cfg)
    for key, value in summary.items():
        if isinstance(value, float):
            metrics.log_metric(key, value)
    metrics.log_metric("epochs_run", summary["epochs_run"])
    resolved = read_json(trained_model.path, CONFIG_FILE)
    trained_model.metadata.update({
        "bn_policy": bn_policy, "clip": clip, "clip_threshold": clip_threshold,
        "image_size": image_size, "config_hash": summary["config_hash"],
        "labels": resolved["labels"], "precision": resolved["runtime"]["precision"],
    })
    shutil.copyfile(f"{trained_model.path}/{CURVES_FILE}", training_curves.path)
