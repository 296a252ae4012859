"""Which model should ``best.pt`` keep? Every epoch's model scored on the test images.

A run's ``best.pt`` holds the model of its best validation epoch. With one validation image that
score can stall after the first epoch while later models are better on the test images (HeLa at
seed 1: BENCHMARKS.md, "Eighth session"). This study trains a run one epoch at a time (each
``--epochs k`` a resume of the last: exact, with the warm-up-constant schedule of a run that
decides its length), and after every epoch records the validation Dice and the test Dice of that
epoch's model (the moving average of the weights, what validation scores), then replays selection
rules on the curve: the best validation epoch (today's), the latest epoch within a margin of the
best validation score, and the last epoch.

    python benchmarks/selection_study.py --set hela --seed 1 --epochs 5 --out benchmarks/results_selection
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from length_study import CACHE, averaged_checkpoint, build, config_for, test_dice
from unetkit import train
from unetkit.training.state import resume_config


def select(epochs: list[dict], margin: float) -> int:
    """The latest epoch whose validation Dice is within ``margin`` of the best so far (0: the best)."""
    best, kept = -1.0, 0
    for index, entry in enumerate(epochs):
        if entry["val_dice"] > best:
            best = entry["val_dice"]
        if entry["val_dice"] >= best - margin:
            kept = index
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root = build(args.set, CACHE)
    run_dir = Path(tempfile.mkdtemp()) / args.set
    epochs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for epoch in range(1, args.epochs + 1):
            if epoch == 1:
                config = config_for(root, run_dir, epochs=1, schedule="warmup-constant", patch_size=128,
                                    steps_per_epoch=200, seed=args.seed, upper_percentile=99, normalization_jitter=1.0)
                train(config, report=lambda text: None)
            else:
                train(resume_config(run_dir, epochs=epoch, progress=False), resume=True, report=lambda text: None)
            with open(run_dir / "log.csv") as handle:
                row = list(csv.DictReader(handle))[-1]
            model = averaged_checkpoint(run_dir, Path(tmp) / "average.pt")
            epochs.append({"epoch": epoch, "val_dice": float(row["val_dice"]), "test_dice": test_dice(model, root)})
            print(json.dumps(epochs[-1]), flush=True)
    lines = [f"{args.set}, seed {args.seed}, {args.epochs} epochs of 200 steps; test Dice of the model each rule keeps:"]
    for margin in (0.0, 0.001, 0.003, 0.005):
        kept = select(epochs, margin)
        lines.append(f"margin {margin:g}: epoch {epochs[kept]['epoch']}, test Dice {epochs[kept]['test_dice']:.4f}")
    lines.append(f"last epoch: test Dice {epochs[-1]['test_dice']:.4f}")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.set}_seed{args.seed}.json").write_text(json.dumps({"epochs": epochs, "rules": lines}, indent=1))


if __name__ == "__main__":
    main()
