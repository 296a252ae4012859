"""Should validation and ``best.pt`` use a moving average of the weights (``--ema``)? Measured.

    python benchmarks/averaging_study.py long --task instances --sets hela cells3d bbbc007 --epochs 12
    python benchmarks/averaging_study.py long --task semantic --sets hela cells3d --epochs 12
    python benchmarks/averaging_study.py table                       # seconds, from the logs

``long``: one run per set of ``unetkit train`` with its defaults (warm-up then a constant
learning rate, validation on a split of the training images) and ``--ema 0``, for
``--epochs`` epochs. Beside the raw weights, the run keeps exponential moving averages of
them at several decays: one training trajectory, observed through each average (an average
only follows the weights; it changes nothing the optimiser does). After every epoch, each
variant's validation scores and test scores are logged (semantic: the test pixel Dice;
instances: the test objects' F1@0.5, all objects and border objects left out).

``table``: replays the default stopping rule on each variant's validation pixel Dice (the
score both tasks stop on), and prints where it stops, the test score of the model it keeps
(the best validation epoch until then), the best and mean test score over the epochs, and
how much the test score moves from one epoch to the next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from instance_length_study import test_objects_of
from length_study import replay, test_dice_of
from public_data import CACHE, build

from unetkit import TrainConfig, train
from unetkit.inference.loading import LoadedPredictor
from unetkit.inference.predictor import TorchPredictor
from unetkit.training import loop
from unetkit.training.averaging import weight_average
from unetkit.training.stopping import StoppingRule

DECAYS = (0.98, 0.99, 0.995)


def variant_name(decay: float) -> str:
    return "raw" if decay == 0 else f"ema {decay:g}"


def test_scores(parts, model: torch.nn.Module, root: Path) -> dict[str, float]:
    """The test score(s) of ``model``, with the run's normalisation and task."""
    model.eval()
    loaded = LoadedPredictor(TorchPredictor(model, parts.autocast_dtype, parts.task.activation),
                             parts.data_options, parts.task)
    try:
        if parts.config.task == "instances":
            return test_objects_of(loaded, root)
        return {"test_dice": test_dice_of(loaded, root)}
    finally:
        model.train()


def long_runs(args: argparse.Namespace) -> None:
    args.logs.mkdir(parents=True, exist_ok=True)
    for set_name in args.sets:
        root = build(set_name, args.cache)
        out = Path(tempfile.mkdtemp()) / set_name
        task = {"task": "instances"} if args.task == "instances" else {"mask_mode": "instances"}
        config = TrainConfig(out=str(out), data=str(root / "train"), epochs=args.epochs, ema=0.0,
                             schedule="warmup-constant", progress=False, patch_size=256, steps_per_epoch=50,
                             **task)  # as BENCHMARKS' tables were made (the pixel default is 128 px since)
        averages: dict[float, torch.nn.Module] = {}
        seen: dict = {}
        original_step = loop.train_step

        def observed_step(parts, images, targets):  # the run's own step, then each average follows it
            loss = original_step(parts, images, targets)
            if not averages:
                seen["parts"] = parts
                averages.update({decay: weight_average(parts.model, decay) for decay in args.decays})
            for average in averages.values():
                average.update_parameters(parts.model)
            return loss

        log: dict = {"set": set_name, "task": args.task, "decays": list(args.decays), "epochs": []}

        def after_epoch(row: dict[str, str]) -> None:
            parts = seen["parts"]
            entry: dict = {key: float(row[key]) for key in ("epoch", "loss", "seconds")}
            entry["raw"] = {"val_dice": float(row["val_dice"]), **test_scores(parts, parts.model, root)}
            for decay, average in averages.items():
                scores = loop.validate(dataclasses.replace(parts, averaged=average))
                entry[variant_name(decay)] = {"val_dice": scores["dice"],
                                              **test_scores(parts, average.module, root)}
            log["epochs"].append(entry)
            print(set_name, json.dumps(entry), flush=True)
            (args.logs / f"{args.task}-{set_name}.json").write_text(json.dumps(log, indent=1))

        loop.train_step = observed_step
        try:
            train(config, report=lambda text: None, on_epoch=after_epoch)
        finally:
            loop.train_step = original_step


def table(args: argparse.Namespace) -> None:
    rule = StoppingRule()
    print(f"the rule (the default until 2026-12-06): patience {rule.patience}, min_delta {rule.min_delta}, on each "
          "variant's validation Dice\n")
    print("| task | set | test score | weights | stops at epoch | training s | kept epoch | kept: test | "
          "best epoch: test | mean test, epochs 3+ | mean change epoch to epoch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(args.logs.glob("*.json")):
        log = json.loads(path.read_text())
        epochs = log["epochs"]
        columns = ["test_f1", "test_f1_inner"] if log["task"] == "instances" else ["test_dice"]
        for column in columns:
            for variant in ["raw"] + [variant_name(d) for d in log["decays"]]:
                curve = [entry[variant] for entry in epochs]
                stop = replay(curve, rule, lambda entry: entry["val_dice"])
                kept = max(range(stop + 1), key=lambda index: curve[index]["val_dice"])
                tests = np.array([entry[column] for entry in curve])
                print(f"| {log['task']} | {log['set']} | {column} | {variant} | {stop + 1} | "
                      f"{epochs[stop]['seconds']:.0f} | {kept + 1} | "
                      f"{tests[kept]:.3f} | {tests.max():.3f} | {tests[2:].mean():.3f} | "
                      f"{np.abs(np.diff(tests[2:])).mean():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["long", "table"])
    parser.add_argument("--task", choices=["semantic", "instances"], default="instances")
    parser.add_argument("--sets", nargs="+", default=["hela", "cells3d", "bbbc007"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--decays", type=float, nargs="+", default=list(DECAYS))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--logs", type=Path, default=CACHE / "averaging-logs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    {"long": long_runs, "table": table}[args.part](args)


if __name__ == "__main__":
    main()
