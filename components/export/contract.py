"""The ``saved_model`` artifact: a SavedModel folder plus the files export adds to it."""

from components.evaluate.contract import MODEL_CARD_FILE, MODEL_CARD_JSON

METADATA_FILE = "export_metadata.json"
# Files about the model beside its SavedModel, not part of its content hash.
DESCRIPTIONS = (METADATA_FILE, MODEL_CARD_FILE, MODEL_CARD_JSON)
LABELS_ASSET = "assets/labels.txt"
