"""How long ``unetkit train`` should run by default: the stopping rule, chosen by measurement.

    python benchmarks/length_study.py long --sets hela cho cells3d bbbc007     # ~35 min a set on 2 cores
    python benchmarks/length_study.py rules                                    # seconds, from the logs
    python benchmarks/length_study.py default --sets hela cho cells3d bbbc007  # ~10 min a set
    python benchmarks/length_study.py resume --runs hela=/tmp/tmpXXXX/hela --logs L  # finish a cut long run
    python benchmarks/length_study.py last --runs hela=/tmp/tmpXXXX/hela  # best.pt against the last epoch's models
    python benchmarks/length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --seed 1
    python benchmarks/length_study.py default --base-width 16                  # a narrower network instead
    python benchmarks/length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --upper-percentile 99 \
        --logs benchmarks/results_length_128_upper99                          # another normalisation, its own folder
    python benchmarks/length_study.py default --max-time 180 --patch-size 128  # 3 minutes, smaller patches

``long``: one 40-epoch run per set (the reference network, unetkit's defaults: warm-up then a
constant learning rate, validation on a split of the training images), recording after every
epoch the validation score, the training time so far, and the test Dice of the best model so
far (what ``best.pt`` would hold if the run stopped there). Logs go to ``--logs``.

``rules``: replays every candidate rule (patience x min_delta) on those logs: where it would
have stopped, after how long, and the test Dice it would have given, against the 40-epoch
run's; prints the table behind the default's constants.

``resume``: finishes long runs that were cut short (a machine restart, a session's end) from
their run directories' ``last.pt``, appending to their logs. Training resumes exactly (the
resume tests check it), so the finished curve is the one an uncut run would have drawn; only
the seconds may differ, as they do with the machine's load.

``default``: runs ``unetkit train`` as a user would (no --epochs) on each set and reports its
wall time, why it stopped, and its test Dice, beside the 40-epoch run's.

``last``: the test Dice of runs' ``last.pt`` (the raw weights and their moving average) beside their
``best.pt``'s: whether the validation split picked the better model.
"""

from __future__ import annotations

import argparse
import dataclasses
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from public_data import CACHE, build

from unetkit import TrainConfig, train
from unetkit.checkpoint import read_checkpoint, save_checkpoint
from unetkit.data.dataset import DataOptions, load_labelled
from unetkit.inference.loading import LoadedPredictor, load_predictor
from unetkit.scoring import evaluate_samples
from unetkit.training.state import resume_config
from unetkit.training import stopping
from unetkit.training.stopping import StoppingRule, StopState

PATIENCES = (2, 3, 4, 5)
MIN_DELTAS = (0.0, 0.001, 0.003, 0.01)


def test_dice(checkpoint: Path, root: Path) -> float:
    return test_dice_of(load_predictor(checkpoint), root)


def test_dice_of(loaded: LoadedPredictor, root: Path) -> float:
    """Mean pixel Dice of the foreground over the set's test images."""
    options = DataOptions(num_classes=1, mask_mode="instances", normalization=loaded.data_options.normalization)
    samples = load_labelled(root / "test", options)
    return evaluate_samples(loaded.predictor, samples, task=loaded.task).means()["dice"]


def config_for(root: Path, out: Path, **changes) -> TrainConfig:
    return TrainConfig(out=str(out), data=str(root / "train"), mask_mode="instances", progress=False, **changes)


def long_runs(args: argparse.Namespace) -> None:
    args.logs.mkdir(parents=True, exist_ok=True)
    # the patches and epochs of the logs in results_length/, unless --patch-size, --steps-per-epoch or --seed
    # say otherwise; every other option is today's default (the log records the foreground share)
    changes = {"patch_size": args.patch_size or 256, "steps_per_epoch": args.steps_per_epoch or 50,
               "seed": args.seed or 0}
    candidate = changed_candidates(vars(args))  # as resume reads them back from the stored run
    named = log_name("", **changes, **candidate)  # not the normalisation, which the log's folder says (--logs)
    if args.upper_percentile is not None:
        changes["upper_percentile"] = args.upper_percentile
    if args.normalization_jitter is not None:
        changes["normalization_jitter"] = args.normalization_jitter
    changes.update(candidate)
    for set_name in args.sets:
        root = build(set_name, args.cache)
        config = config_for(root, Path(tempfile.mkdtemp()) / set_name, epochs=args.epochs, schedule="warmup-constant",
                            **changes)
        print(f"{set_name} run directory (for resume): {config.out}", flush=True)
        run_logged(config, root, args.logs / f"{set_name}{named}",
                   {"set": set_name, "epochs": [], **changes, "foreground_fraction": config.foreground_fraction,
                    "upper_percentile": config.upper_percentile, "normalization_jitter": config.normalization_jitter})


#: options a long run may change to measure a candidate; when changed, the log's name says so
CANDIDATE_OPTIONS = ("lr", "ema", "base_width")


def log_name(set_name: str, patch_size: int, steps_per_epoch: int, seed: int, **candidate: float) -> str:
    """A long run's log file: ``SET.json`` for the first study's settings (256 px, 50-step
    epochs, seed 0, unetkit's learning rate, weight average and widths), else with them in the name.

    >>> log_name("hela", 128, 200, 1, lr=0.002)
    'hela_128px_200steps_seed1_lr0.002.json'
    """
    suffix = "".join(f"_{name.replace('_', '')}{value:g}" for name, value in sorted(candidate.items()))
    if (patch_size, steps_per_epoch, seed) == (256, 50, 0) and not suffix:
        return f"{set_name}.json"
    return f"{set_name}_{patch_size}px_{steps_per_epoch}steps_seed{seed}{suffix}.json"


def changed_candidates(values: dict[str, float | None]) -> dict[str, float]:
    """The :data:`CANDIDATE_OPTIONS` in ``values`` that are given and differ from unetkit's defaults."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    return {name: values[name] for name in CANDIDATE_OPTIONS if values[name] not in (None, defaults[name])}


def averaged_checkpoint(run_dir: Path, path: Path) -> Path:
    """``run_dir/last.pt``'s moving average of the weights, written to ``path`` as a checkpoint of its own."""
    last = read_checkpoint(run_dir / "last.pt")
    averaged = {name.removeprefix("module."): value for name, value in last["training"]["averaged"].items()}
    payload = {key: value for key, value in last.items() if key != "training"}
    save_checkpoint(path, {**payload, "model_state": {name: averaged[name] for name in last["model_state"]}},
                    overwrite=True)
    return path


def resume_runs(args: argparse.Namespace) -> None:
    for item in args.runs:
        set_name, _, run_dir = item.partition("=")
        run_dir = Path(run_dir)
        root = build(set_name, args.cache)
        stored = resume_config(run_dir, progress=False)
        log_path = args.logs / log_name(set_name, stored.patch_size, stored.steps_per_epoch, stored.seed,
                                        **changed_candidates(vars(stored)))
        log = json.loads(log_path.read_text())
        rows = read_log_rows(run_dir / "log.csv")
        missing = [row for row in rows if int(row["epoch"]) > len(log["epochs"])]
        if len(missing) > 1:  # best.pt only tells the test Dice of the last epoch's best model
            raise SystemExit(f"{run_dir}: {len(missing)} epochs are in log.csv but not in {log_path}")
        log["epochs"] += [epoch_entry(row, run_dir, root) for row in missing]
        run_logged(stored, root, log_path, log, resume=True)


def run_logged(config: TrainConfig, root: Path, log_path: Path, log: dict, resume: bool = False) -> None:
    """Train (or resume) ``config``'s run, adding every epoch to ``log`` and writing it to
    ``log_path`` after each one, so that a run cut short still leaves its curve."""
    run_dir = Path(config.out)
    wall = time.perf_counter() - float(log.get("wall_s") or 0.0)

    def write_log(complete: bool) -> None:
        log.update(complete=complete, wall_s=time.perf_counter() - wall,
                   final_test_dice=log["epochs"][-1]["test_dice_of_best"])
        log_path.write_text(json.dumps(log, indent=1))

    def after_epoch(row: dict[str, str]) -> None:
        log["epochs"].append(epoch_entry(row, run_dir, root))
        print(log["set"], json.dumps(log["epochs"][-1]), flush=True)
        write_log(complete=False)

    result = train(config, resume=resume, report=print if resume else (lambda text: None), on_epoch=after_epoch)
    write_log(complete=result.stopped == "completed")  # not after a signal


def read_log_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def epoch_entry(row: dict[str, str], run_dir: Path, root: Path) -> dict:
    entry: dict = {k: row[k] for k in ("epoch", "val_dice", "loss", "seconds")}
    entry["test_dice_of_best"] = test_dice(run_dir / "best.pt", root)
    return entry


def validation_dice(entry: dict) -> float | None:
    """A long run's logged validation Dice (None for a run without validation)."""
    return float(entry["val_dice"]) if entry["val_dice"] else None


def replay(epochs: list[dict], rule: StoppingRule, score: Callable[[dict], float | None] = validation_dice) -> int:
    """The index of the epoch at which ``rule``, reading ``score`` (or, where it is None, the
    training loss), stops (the last one if it never does)."""
    state = StopState()
    for index, entry in enumerate(epochs):
        score_now = score(entry)
        loss = None if score_now is not None else float(entry["loss"])
        if rule.update(state, score_now, loss):
            return index
    return len(epochs) - 1


def rules(args: argparse.Namespace) -> None:
    logs = {path.stem: json.loads(path.read_text()) for path in sorted(args.logs.glob("*.json"))}
    if not logs:
        raise SystemExit(f"{args.logs}: no long runs' logs (*.json) to replay; run 'long' first, or pass --logs")
    print("| patience | min_delta | " + " | ".join(f"{name}: epochs, s, Dice - long run's" for name in logs)
          + " | worst Dice gap | mean s |")
    print("|---|---|" + "---|" * len(logs) + "---|---|")
    for patience in PATIENCES:
        for delta in MIN_DELTAS:
            cells, gaps, seconds = [], [], []
            for log in logs.values():
                stop = replay(log["epochs"], StoppingRule(patience=patience, min_delta=delta, lr_drops=0))
                entry = log["epochs"][stop]
                gap = entry["test_dice_of_best"] - log["final_test_dice"]
                gaps.append(gap)
                seconds.append(float(entry["seconds"]))
                cells.append(f"{stop + 1}, {float(entry['seconds']):.0f}, {gap:+.4f}")
            print(f"| {patience} | {delta} | " + " | ".join(cells) + f" | {min(gaps):+.4f} | {np.mean(seconds):.0f} |")
    print("\nThe rule with patience 3 (the default until 2026-12-06), min_delta 0.003, per set:\n")
    print("| set | default: epochs | training s | test Dice | long run: epochs | test Dice | difference |")
    print("|---|---|---|---|---|---|---|")
    for name, log in logs.items():
        stop = replay(log["epochs"], StoppingRule())
        entry, last = log["epochs"][stop], log["epochs"][-1]
        print(f"| {name} | {stop + 1} | {float(entry['seconds']):.0f} | {entry['test_dice_of_best']:.4f} | "
              f"{last['epoch']}{'' if log.get('complete', True) else ' (cut)'} | {log['final_test_dice']:.4f} | "
              f"{entry['test_dice_of_best'] - log['final_test_dice']:+.4f} |")


def default_runs(args: argparse.Namespace) -> None:
    logs = {path.stem: json.loads(path.read_text()) for path in sorted(args.logs.glob("*.json"))}
    if args.lr_drops is not None:  # a candidate: plateaus first lower the learning rate (stopping.LR_DROPS)
        stopping.LR_DROPS = args.lr_drops
    patience = config_for(Path("."), Path("-")).stopping_rule().patience  # as the runs resolve it
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; stopping patience {patience}; "
          "learning-rate drops before the stop: "
          f"{stopping.LR_DROPS}; base width {args.base_width or 'of the preset'}; --ema {args.ema}; "
          f"patch {args.patch_size}; lr {args.lr}; steps per epoch {args.steps_per_epoch}; max time {args.max_time_s} s; seed {args.seed}")
    print("| set | default: wall s | epochs | stopped | test Dice | 40 epochs: test Dice | difference |")
    print("|---|---|---|---|---|---|---|")
    for set_name in args.sets:
        root = build(set_name, args.cache)
        out = Path(tempfile.mkdtemp()) / set_name
        start = time.perf_counter()
        changes = {name: getattr(args, name) for name in ("base_width", "ema", "patch_size", "lr", "max_time_s",
                                                          "steps_per_epoch", "seed")
                   if getattr(args, name) is not None}
        result = train(config_for(root, out, **changes), report=lambda text: None)
        wall = time.perf_counter() - start
        dice = test_dice(out / "best.pt", root)
        reference = logs.get(set_name, {}).get("final_test_dice", float("nan"))
        print(f"| {set_name} | {wall:.0f} | {result.epochs_completed} | {result.stopped.value} | {dice:.4f} | "
              f"{reference:.4f} | {dice - reference:+.4f} |", flush=True)
        (out.parent / "seconds.txt").write_text(f"{wall}\n")  # beside the run's log.csv, for a later look


#: the options each part reads (the others are refused)
USED_BY = {
    "long": {"sets", "epochs", "base_width", "ema", "patch_size", "lr", "steps_per_epoch", "seed", "upper_percentile",
             "normalization_jitter", "cache", "logs"},
    "resume": {"runs", "cache", "logs"},
    "rules": {"logs"},
    "last": {"runs", "cache"},
    "default": {"sets", "lr_drops", "base_width", "ema", "patch_size", "lr", "steps_per_epoch", "seed", "max_time_s",
                "cache", "logs"},
}


def last_models(args: argparse.Namespace) -> None:
    """The test Dice of each run's ``last.pt``: its raw weights and their moving average (what ``best.pt``
    would hold had validation kept the last epoch), beside ``best.pt``'s: does validation pick well?"""
    print("| run | epoch of last.pt | best.pt | last.pt, average | last.pt, raw |")
    print("|---|---|---|---|---|")
    for item in args.runs:
        set_name, _, run_dir = item.partition("=")
        run_dir = Path(run_dir)
        root = build(set_name, args.cache)
        with tempfile.TemporaryDirectory() as tmp:
            average_dice = test_dice(averaged_checkpoint(run_dir, Path(tmp) / "average.pt"), root)
        epoch = read_checkpoint(run_dir / "last.pt")["training"]["epoch"]
        print(f"| {set_name} {run_dir} | {epoch} | {test_dice(run_dir / 'best.pt', root):.4f} | "
              f"{average_dice:.4f} | {test_dice(run_dir / 'last.pt', root):.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["long", "resume", "rules", "default", "last"])
    parser.add_argument("--sets", nargs="+", default=["hela", "cho", "cells3d", "bbbc007"])
    parser.add_argument("--epochs", type=int, default=40, help="length of the long runs")
    parser.add_argument("--lr-drops", type=int, help="default: try this many learning-rate drops on plateaus")
    parser.add_argument("--base-width", type=int, help="default, long: train this narrower (or wider) network instead")
    parser.add_argument("--ema", type=float, help="default, long: with this --ema (default: unetkit's)")
    parser.add_argument("--patch-size", type=int, help="default, long: training patches of this side instead")
    parser.add_argument("--lr", type=float, help="default, long: this learning rate instead")
    parser.add_argument("--steps-per-epoch", type=int, help="default, long: epochs of this many steps instead")
    parser.add_argument("--seed", type=int, help="default, long: this seed instead (another draw of patches and weights)")
    parser.add_argument("--max-time", dest="max_time_s", type=float, metavar="SECONDS",
                        help="default: with this time budget (the README's first command: 180)")
    parser.add_argument("--upper-percentile", type=float,
                        help="long: normalise with this upper percentile (give the runs their own --logs folder)")
    parser.add_argument("--normalization-jitter", type=float,
                        help="long: this share of patches jittered (give the runs their own --logs folder)")
    parser.add_argument("--runs", nargs="+", default=[], metavar="SET=RUN_DIR", help="for resume: cut runs; for last: runs to score")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--logs", type=Path, default=CACHE / "length-logs")
    args = parser.parse_args()
    for action in parser._actions:  # an option the part would ignore is an error, not a silent no-op
        if action.option_strings and action.dest not in USED_BY[args.part] | {"help"} \
                and getattr(args, action.dest) != action.default:
            parser.error(f"{action.option_strings[0]} does not apply to {args.part}")
    {"long": long_runs, "resume": resume_runs, "rules": rules, "default": default_runs,
     "last": last_models}[args.part](args)


if __name__ == "__main__":
    main()
