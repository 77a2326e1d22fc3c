"""The ``trained_model`` artifact: the files the train step writes, by name."""

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"  # the settings (flat, as the CLI names them), labels,
# the resolved runtime and the phases
HISTORY_FILE = "history.json"  # one object per epoch
CURVES_FILE = "training_curves.html"
