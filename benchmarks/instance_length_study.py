"""When should an instance model's default run stop? Validation scores against test objects, epoch by epoch.

    python benchmarks/instance_length_study.py long --sets hela cells3d bbbc007 --epochs 16  # ~16 min a set
    python benchmarks/instance_length_study.py rules                                          # seconds, from the logs
    python benchmarks/instance_length_study.py keep --logs benchmarks/results_instance_length  # what best.pt holds

``long``: one run per set of ``unetkit train --task instances`` with its defaults (the
distance method, warm-up then a constant learning rate, validation on a split of the
training images) for ``--epochs`` epochs. After every epoch it logs the validation columns
(pixel Dice, F1@0.5, AP@0.5 of the objects) and the test objects' F1@0.5 (all objects, and
with border objects left out) of that epoch's weights. Logs go to ``--logs``.

``rules``: replays stopping rules on those logs: which validation score decides (the
object F1 the default run uses, the pixel Dice, their mean), the patience and the
smallest improvement that counts. For each: where it stops, and the test F1 of the model
the run would keep (the best epoch by that score until then), against the best test F1 of
any epoch and the last epoch's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from instances_study import test_pairs
from length_study import replay
from selection_study import MARGINS, select
from public_data import CACHE, build

from unetkit import TrainConfig, train
from unetkit.data.dataset import load_image_planes
from unetkit.inference.loading import LoadedPredictor, load_predictor
from unetkit.instances.scores import object_scores
from unetkit.tiling import TileOptions, predict_tiled
from unetkit.training.stopping import StoppingRule

SCORES = {
    "val F1": lambda entry: entry["val_f1"],
    "val pixel Dice": lambda entry: entry["val_dice"],
    "mean of val F1 and Dice": lambda entry: (entry["val_f1"] + entry["val_dice"]) / 2,
}
#: (the score the stopping rule reads, the score that picks the kept model); the first is the default's
CHOICES = [("val F1", "val F1"), ("val pixel Dice", "val pixel Dice"), ("val pixel Dice", "val F1"),
           ("mean of val F1 and Dice", "mean of val F1 and Dice")]
PATIENCES = (3, 4, 5)
MIN_DELTAS = (0.0, 0.003, 0.01)


def test_objects(checkpoint: Path, root: Path) -> dict[str, float]:
    return test_objects_of(load_predictor(checkpoint), root)


def test_objects_of(loaded: LoadedPredictor, root: Path) -> dict[str, float]:
    """Mean F1@0.5 over the test images: all objects, and border objects left out (``inner``)."""
    rows, inner = [], []
    for _, truth, path in test_pairs(root):
        _, _, normalised = load_image_planes(path, loaded.data_options.normalization)[0]
        labels = loaded.task.labels(predict_tiled(loaded.predictor, normalised, TileOptions()))
        rows.append(object_scores(labels, truth))
        inner.append(object_scores(labels, truth, ignore_border_objects=True))
    return {"test_f1": float(np.mean([r["f1"] for r in rows])),
            "test_f1_inner": float(np.mean([r["f1"] for r in inner]))}


def long_runs(args: argparse.Namespace) -> None:
    args.logs.mkdir(parents=True, exist_ok=True)
    for set_name in args.sets:
        root = build(set_name, args.cache)
        out = Path(tempfile.mkdtemp()) / set_name
        config = TrainConfig(out=str(out), data=str(root / "train"), task="instances", epochs=args.epochs,
                             schedule="warmup-constant", progress=False)
        log: dict = {"set": set_name, "epochs": []}

        def after_epoch(row: dict[str, str]) -> None:
            entry = {key: float(row[key]) for key in ("epoch", "val_dice", "val_f1", "val_ap50", "loss", "seconds")}
            entry.update(test_objects(out / "last.pt", root))
            log["epochs"].append(entry)
            print(set_name, json.dumps(entry), flush=True)
            (args.logs / f"{set_name}.json").write_text(json.dumps(log, indent=1))

        train(config, report=lambda text: None, on_epoch=after_epoch)


def rules(args: argparse.Namespace) -> None:
    logs = {path.stem: json.loads(path.read_text()) for path in sorted(args.logs.glob("*.json"))}
    for column in ("test_f1", "test_f1_inner"):
        print(f"\n{column}: per set, the epoch it stops at, the kept epoch, its test F1 - the best epoch's\n")
        print("| stop on | keep the best by | patience | min_delta | " + " | ".join(f"{name}: stop, kept, gap" for name in logs)
              + " | mean gap | mean epochs |")
        print("|---|---|---|---|" + "---|" * len(logs) + "---|---|")
        for stop_name, keep_name in CHOICES:
            for patience in PATIENCES:
                for delta in MIN_DELTAS:
                    cells, gaps, stops = [], [], []
                    for log in logs.values():
                        epochs = log["epochs"]
                        rule = StoppingRule(patience=patience, min_delta=delta, lr_drops=0)
                        stop = replay(epochs, rule, SCORES[stop_name])
                        kept = max(range(stop + 1), key=lambda index: SCORES[keep_name](epochs[index]))
                        gap = epochs[kept][column] - max(entry[column] for entry in epochs)
                        gaps.append(gap)
                        stops.append(stop + 1)
                        cells.append(f"{stop + 1}, {kept + 1}, {gap:+.3f}")
                    print(f"| {stop_name} | {keep_name} | {patience} | {delta} | " + " | ".join(cells)
                          + f" | {np.mean(gaps):+.3f} | {np.mean(stops):.1f} |")
        longest = max(len(log["epochs"]) for log in logs.values())
        print("\n| set | " + " | ".join(f"epoch {i + 1}" for i in range(longest)) + " |")
        print("|---|" + "---|" * longest)
        for name, log in logs.items():
            print(f"| {name} | " + " | ".join(f"{entry[column]:.3f}" for entry in log["epochs"]) + " |")


def kept_models(args: argparse.Namespace) -> None:
    """Test F1 of the model ``best.pt`` holds with each ``--keep-within`` margin, where the default rule
    (validation pixel Dice, patience 3, 0.003) ends the run and after every logged epoch."""
    logs = {path.stem: json.loads(path.read_text()) for path in sorted(args.logs.glob("*.json"))}
    if not logs:
        raise SystemExit(f"{args.logs}: no long runs' logs (*.json) to replay; run 'long' first, or pass --logs")
    print("| set | cut | epochs | " + " | ".join(f"within {margin:g}: F1 (epoch)" for margin in MARGINS) + " |")
    print("|---|---|---|" + "---|" * len(MARGINS))
    for name, log in logs.items():
        epochs = log["epochs"]
        stop = replay(epochs, StoppingRule(lr_drops=0), SCORES["val pixel Dice"]) + 1
        for cut_name, cut in (("the rule", stop), ("all", len(epochs))):
            cells = []
            for margin in MARGINS:
                kept = select(epochs[:cut], margin)
                cells.append(f"{epochs[kept]['test_f1']:.4f} ({kept + 1})")
            print(f"| {name} | {cut_name} | {cut} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["long", "rules", "keep"])
    parser.add_argument("--sets", nargs="+", default=["hela", "cells3d", "bbbc007"])  # CHO's ids repeat: not instances
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--logs", type=Path, default=CACHE / "instance-length-logs")
    args = parser.parse_args()
    {"long": long_runs, "rules": rules, "keep": kept_models}[args.part](args)


if __name__ == "__main__":
    main()
