"""The ``saved_model`` artifact: a SavedModel folder plus the files export adds to it."""

METADATA_FILE = "export_metadata.json"
LABELS_ASSET = "assets/labels.txt"
