"""Class weights on a 10:1 imbalanced demo split (#24): the default recipe from the demo
backbone with ``class_weights`` off (the default) and on, scored on the test split with
plain accuracy (what early stopping and the gate judge), balanced accuracy (the mean of
per-class recalls, what the weights aim at) and ECE. Medians over seeds.
Usage: python -m benchmarks.class_weights [SEEDS]
"""

import statistics
import sys
import tempfile
from pathlib import Path

MAJORITY, MINORITY, SIZE = 300, 30, 64


def imbalanced_examples(root: Path) -> Path:
    """Demo images, class 0 with 10 times the images of classes 1 and 2; 60/20/20 split."""
    from components.common.demo_data import write_demo_data
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    images, examples = root / "images", root / "examples"
    write_demo_data(str(images), classes=3, per_class=MAJORITY, size=96, seed=11)
    for folder in sorted(images.iterdir())[1:]:
        for extra in sorted(folder.iterdir())[MINORITY:]:
            extra.unlink()
    run(PrepareConfig(source=str(images), output=str(examples), train_fraction=0.6,
                      val_fraction=0.2, test_fraction=0.2))
    return examples


def scores(model_path: Path, examples: Path) -> dict[str, float]:
    import numpy as np

    from components.evaluate.metrics import classification_metrics
    from components.train.data import make_dataset
    from components.train.model import load_trained_model

    model = load_trained_model(str(model_path))
    probs, truth = [], []
    for x, y in make_dataset(str(examples), "test", SIZE, 32, 3):
        probs.append(model(x).numpy())
        truth.append(y.numpy().argmax(1))
    probs, truth = np.concatenate(probs), np.concatenate(truth)
    found = classification_metrics(probs, truth, ["0", "1", "2"])
    recalls = [c["recall"] for c in found["per_class"].values()]
    return {"accuracy": found["accuracy"], "balanced_accuracy": float(np.mean(recalls)),
            "ece": found["ece"], "minority_recall": float(np.mean(recalls[1:]))}


def main() -> None:
    from components.train.config import TrainConfig
    from components.train.run import run
    from pipeline.local_run import demo_backbone

    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    root = Path(tempfile.mkdtemp(prefix="bench-class-weights-"))
    examples = imbalanced_examples(root)
    weights = demo_backbone()
    print(f"\n{'class weights':<14} {'accuracy':>9} {'balanced':>9} {'minority recall':>16} "
          f"{'ECE':>6}  (test split, median of {seeds} seeds)")
    for weighted in (False, True):
        runs = []
        for seed in range(seeds):
            out = root / f"model-{weighted}-{seed}"
            run(TrainConfig.of(examples=str(examples), output=str(out), image_size=SIZE,
                               epochs=4, batch_size=16, weights=weights, seed=seed,
                               class_weights=weighted))
            runs.append(scores(out / "model.keras", examples))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{'on' if weighted else 'off':<14} {med['accuracy']:>9.3f} "
              f"{med['balanced_accuracy']:>9.3f} {med['minority_recall']:>16.3f} "
              f"{med['ece']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
