"""The ``examples`` artifact: the files the data step writes besides its TFRecord shards
(whose tf.Example keys and readers are in components/common/examples.py), by name."""

LABELS_FILE = "labels.txt"  # one class name per line, in label-index order
MANIFEST_FILE = "manifest.jsonl"  # one row per input file: accepted (with split) or why not
STATS_FILE = "stats.json"  # counts, fingerprint, skip reasons, the step's settings
AUGMENTATION_FILE = "augmentation.json"  # the AugmentPolicy training applies
DATA_REPORT_FILE = "data_report.md"
PREVIEW_FILE = "augmentation_preview.html"
