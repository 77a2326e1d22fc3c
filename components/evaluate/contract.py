"""The ``evaluation`` artifact: the files the evaluate step writes, by name."""

GATE_FILE = "gate.json"  # the decision, its reasons and checks, the baseline it judged
METRICS_FILE = "metrics.json"  # {"candidate": ..., "baseline": ... or null}
REPORT_FILE = "report.md"
MISTAKES_FILE = "worst_mistakes.html"
MODEL_CARD_JSON = "model_card.json"  # the Model Card Toolkit's sections, where they fit
MODEL_CARD_FILE = "model_card.md"
