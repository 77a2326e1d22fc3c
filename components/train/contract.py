"""The ``trained_model`` artifact: the files the train step writes, by name."""

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"  # the settings (flat, as the CLI names them), labels,
# the resolved runtime and the phases
HISTORY_FILE = "history.json"  # one object per epoch
CURVES_FILE = "training_curves.html"
TENSORBOARD_DIR = "tensorboard"  # TensorBoard's event files, one folder per phase's fit


def model_facts(config: dict) -> dict:
    """What later artifacts repeat from a trained model's ``config.json``: the BN policy,
    the clipping, the settings' hash and the precision it trained in."""
    return {**{k: config[k] for k in ("bn_policy", "clip", "clip_threshold", "config_hash")},
            "precision": config["runtime"]["precision"]}


NOT_RECIPE = ("examples", "output", "backup_dir", "run_id", "config_hash", "data_fingerprint",
              "train_seconds")


def recipe(config: dict) -> dict:
    """The settings a model was trained with, from its ``config.json``: every plain value
    but paths, run identity and timings."""
    return {k: v for k, v in config.items()
            if isinstance(v, str | int | float | bool) and k not in NOT_RECIPE}
