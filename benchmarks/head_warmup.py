"""Head warm-up evidence (#13): each BN policy fine-tuned from the demo backbone on the
demo data, without (``head_epochs 0``, the old recipe) and with the head warm-up.
Prints accuracy and log loss of the model each run ships (BN statistics re-estimated where
the policy trains them) on the validation and test splits together. One seed: a table of
evidence, not a significance test.
Usage: python -m benchmarks.head_warmup [WEIGHTS.weights.h5]
"""

import json
import sys
import tempfile
from pathlib import Path

from benchmarks.common import prepared_demo

SIZE, EPOCHS, HEAD_EPOCHS = 64, 6, 2
POLICIES = (("frozen, top 3 blocks", dict(bn_policy="frozen", fine_tune_blocks=3)),
            ("bn_only", dict(bn_policy="bn_only")), ("full", dict(bn_policy="full")))


def main() -> None:
    from components.train.config import TrainConfig
    from components.train.demo_backbone import write_demo_weights
    from components.train.run import run

    root = Path(tempfile.mkdtemp(prefix="bench-warmup-"))
    _images, examples = prepared_demo(root, per_class=80, size=96)
    weights = sys.argv[1] if len(sys.argv) > 1 else str(root / "demo.weights.h5")
    if not Path(weights).exists():
        print(json.dumps(write_demo_weights(weights, image_size=SIZE)))
    print(f"\n{'policy':<22} {'head epochs':>11} {'accuracy':>9} {'log loss':>9}")
    for name, policy in POLICIES:
        for head in (0, HEAD_EPOCHS):
            out = root / f"{policy['bn_policy']}-{head}"
            run(TrainConfig.of(examples=str(examples), output=str(out), image_size=SIZE,
                               epochs=EPOCHS, head_epochs=head, batch_size=16, weights=weights,
                               precision="float32", early_stopping_patience=EPOCHS, **policy))
            accuracy, loss = score(out / "model.keras", examples, SIZE, 3)
            print(f"{name:<22} {head:>11} {accuracy:>9.3f} {loss:>9.3f}", flush=True)


def score(model_path: Path, examples: Path, size: int, classes: int) -> tuple[float, float]:
    """Accuracy and log loss of a trained model on the validation and test splits."""
    import numpy as np

    from components.train.data import make_dataset
    from components.train.model import load_trained_model

    model = load_trained_model(str(model_path))
    hits, losses = [], []
    for split in ("val", "test"):
        for x, y in make_dataset(str(examples), split, size, 16, classes):
            p = np.clip(model(x).numpy(), 1e-7, 1)
            truth = y.numpy().argmax(1)
            hits += list(p.argmax(1) == truth)
            losses += list(-np.log(p[np.arange(len(truth)), truth]))
    return float(np.mean(hits)), float(np.mean(losses))


if __name__ == "__main__":
    main()
