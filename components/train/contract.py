"""The ``trained_model`` artifact: the files the train step writes, by name."""

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"  # the resolved settings, labels, runtime and phases
HISTORY_FILE = "history.json"  # one object per epoch
CURVES_FILE = "training_curves.html"
