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
    python benchmarks/selection_study.py --replay benchmarks/results_selection/*.json   # the table, in seconds
    python benchmarks/selection_study.py --set hela --seed 1 --epochs 5 --weight-init he --out benchmarks/results_he
    python benchmarks/selection_study.py --compare benchmarks/results_selection benchmarks/results_he  # the two, side by side
    python benchmarks/selection_study.py --set bbbc007 --epochs 26 --weight-init glorot \
        --change optimizer=adamw --change weight_decay=0.05 --out benchmarks/results_glorot_decay  # any TrainConfig field
    python benchmarks/selection_study.py --set hela --train-images hela0.tif --epochs 40 \
        --out benchmarks/results_loss_rule  # one training image: no validation, the loss rule's case

Every epoch also records the mean training loss (what the stopping rule reads when there is no validation image);
without validation ``val_dice`` is null and the run keeps its last epoch's model.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from length_study import CACHE, averaged_checkpoint, build, config_for, test_dice
from levers_study import parse_change
from unetkit import train
from unetkit.training.selection import keeps
from unetkit.training.state import resume_config
from unetkit.training.stopping import LOSS_MIN_DROP, PATIENCE, StoppingRule, StopState
from unetkit.weight_init import WEIGHT_INITS

MARGINS = (0.0, 0.001, 0.003, 0.005)


def select(epochs: list[dict], margin: float) -> int:
    """The epoch ``best.pt`` holds after ``epochs`` with ``--keep-within margin`` (unetkit's own rule)."""
    best, kept = None, 0
    for index, entry in enumerate(epochs):
        if entry["val_dice"] is None:  # no validation image: unetkit keeps every epoch's model, the last one stays
            kept = index
        elif keeps(entry["val_dice"], best, margin):
            kept = index
        if entry["val_dice"] is not None:
            best = entry["val_dice"] if best is None else max(best, entry["val_dice"])
    return kept


def rule_stop(epochs: list[dict], patience: int = PATIENCE, loss_min_drop: float = LOSS_MIN_DROP) -> int | None:
    """After how many epochs the stopping rule (patience 3, the default until 2026-12-06, or another ``patience``)
    ends the run (None: not within the curve); without validation it reads the training loss, as unetkit does
    (``loss_min_drop``: the loss rule's relative drop).

    >>> rule_stop([{"val_dice": None, "loss": loss} for loss in (1.0, 0.5, 0.49, 0.48, 0.3)], 2, loss_min_drop=0.05)
    4
    """
    rule, state = StoppingRule(patience=patience, loss_min_drop=loss_min_drop, lr_drops=0), StopState()
    for index, entry in enumerate(epochs):
        if rule.update(state, entry["val_dice"], entry.get("loss") if entry["val_dice"] is None else None):
            return index + 1
    return None


def compare_table(before: Path, after: Path) -> list[str]:
    """For every run logged in both folders or their ``epochs40/`` (SET_seedN.json): test Dice of what ``best.pt``
    holds (the default margin, 0.003) after each epoch up to 5 (200 to 1,000 steps), ``before`` then ``after``; the
    difference at 1,000 steps where both reached it."""
    lines = ["| run | " + " | ".join(f"{200 * k:,} steps" for k in range(1, 6)) + " | 1,000 steps: after - before |",
             "|---|" + "---|" * 6]
    found = [first_five_epochs(folder) for folder in (before, after)]
    for name in sorted(set(found[0]) & set(found[1])):
        curves = [logs[name] for logs in found]
        kept = [[curve[select(curve[:k], 0.003)]["test_dice"] for k in range(1, len(curve) + 1)] for curve in curves]
        cells = [" / ".join(f"{scores[k]:.4f}" if k < len(scores) else "-" for scores in kept) for k in range(5)]
        gain = f"{kept[1][4] - kept[0][4]:+.4f}" if min(len(kept[0]), len(kept[1])) >= 5 else "-"  # not cut short
        lines.append(f"| {name.removesuffix('.json')} | " + " | ".join(cells) + f" | {gain} |")
    return lines


CURVE_KEYS = ("epoch", "val_dice", "test_dice")


def first_five_epochs(folder: Path) -> dict[str, list[dict]]:
    """The first five epochs of every run logged in ``folder`` or its ``epochs40/``, by file name. A run logged
    in both (five epochs, and the first five of a 40-epoch run) must agree: training is deterministic."""
    curves: dict[str, list[dict]] = {}
    sources: dict[str, Path] = {}
    for path in sorted(folder.glob("*_seed*.json")) + sorted(folder.glob("epochs40/*_seed*.json")):
        logged = json.loads(path.read_text())
        if "train_images" in logged:  # trained on part of the set: not the run another folder's same name holds
            raise SystemExit(f"{path}: trained on {', '.join(logged['train_images'])} only; --compare pairs runs "
                             "of whole sets by name")
        curve = [{key: entry[key] for key in CURVE_KEYS} for entry in logged["epochs"][:5]]
        known = curves.setdefault(path.name, curve)
        differ = [a["epoch"] for a, b in zip(known, curve) if a != b]
        if differ:
            raise SystemExit(f"{sources[path.name]} and {path}: the same run with different curves "
                             f"(from epoch {differ[0]})")
        if len(curve) >= len(known):
            curves[path.name], sources[path.name] = curve, path
    return curves


def replay_table(paths: list[Path]) -> list[str]:
    """For each logged run: test Dice of the model each margin keeps (its epoch) where the stopping rule
    with patience 3 (the default until 2026-12-06) ends the run (if it does within the curve), after 5 epochs (1,000 steps) and after all."""
    lines = ["| run | cut | epochs | keep the best (0) | within 0.001 | within 0.003 | within 0.005 | last epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for path in paths:
        logged = json.loads(path.read_text())
        epochs, planned = logged["epochs"], logged.get("planned_epochs", len(logged["epochs"]))
        name = f"{path.parent.name}/{path.stem}" if path.parent.name == "epochs40" else path.stem
        if len(epochs) < planned:
            name += f" (cut: {len(epochs)} of {planned} epochs)"
        cuts = [("1,000 steps", min(5, len(epochs))), ("all", len(epochs))]
        stop = rule_stop(epochs)
        if stop is not None:
            cuts.insert(0, ("the rule", stop))
        for cut_name, cut in cuts:
            shown = epochs[:cut]
            cells = [f"{shown[k]['test_dice']:.4f} ({k + 1})" for k in (select(shown, m) for m in MARGINS)]
            lines.append(f"| {name} | {cut_name} | {cut} | " + " | ".join(cells)
                         + f" | {shown[-1]['test_dice']:.4f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="where each run's curve goes (SET_seedN.json)")
    parser.add_argument("--weight-init", default="pytorch", choices=WEIGHT_INITS,
                        help="how the network's weights start (unetkit's --weight-init; pytorch, the default, "
                             "is what every curve in results_selection/ was trained with)")
    parser.add_argument("--change", action="append", default=[], metavar="NAME=VALUE", type=parse_change,
                        help="a TrainConfig option changed for the run (repeatable; recorded in the JSON)")
    parser.add_argument("--train-images", nargs="+", metavar="NAME",
                        help="train on these of the set's training images only (one: no validation image, so the "
                             "stopping rule reads the training loss)")
    parser.add_argument("--replay", type=Path, nargs="+", metavar="JSON",
                        help="no training: the table of what each margin keeps, from curves written before")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                        help="no training: what best.pt holds after each epoch, for the runs logged in both folders")
    args = parser.parse_args()
    if args.compare:
        print("\n".join(compare_table(*args.compare)))
        return
    if args.replay:
        print("\n".join(replay_table(args.replay)))
        return
    if args.set is None or args.out is None:
        parser.error("--set and --out are needed to train (or --replay JSON... to read curves)")
    if args.epochs < 1:
        parser.error("--epochs must be 1 or more")
    root = build(args.set, CACHE)
    run_dir = Path(tempfile.mkdtemp()) / args.set
    epochs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.train_images:
            root = subset_root(root, args.train_images, Path(tmp) / "subset")
        for epoch in range(1, args.epochs + 1):
            if epoch == 1:
                config = config_for(root, run_dir, epochs=1, schedule="warmup-constant", patch_size=128,
                                    steps_per_epoch=200, seed=args.seed, upper_percentile=99, normalization_jitter=1.0,
                                    weight_init=args.weight_init, **dict(args.change))
                train(config, report=lambda text: None)
            else:
                train(resume_config(run_dir, epochs=epoch, progress=False), resume=True, report=lambda text: None)
            with open(run_dir / "log.csv") as handle:
                row = list(csv.DictReader(handle))[-1]
            model = averaged_checkpoint(run_dir, Path(tmp) / "average.pt")
            epochs.append({"epoch": epoch, "val_dice": float(row["val_dice"]) if row["val_dice"] else None,
                           "loss": float(row["loss"]), "test_dice": test_dice(model, root)})
            print(json.dumps(epochs[-1]), flush=True)
            write_curve(args, epochs)  # after every epoch: a run cut short leaves the curve it made
    print("\n".join(summary(args, epochs)))


def subset_root(root: Path, names: list[str], out: Path) -> Path:
    """A set whose training images are only ``names`` (links to ``root``'s files; the same test images)."""
    for folder in ("images", "masks"):
        (out / "train" / folder).mkdir(parents=True)
        for name in names:
            source = root / "train" / folder / name
            if not source.is_file():
                raise SystemExit(f"{source}: no such training {folder[:-1]} (--train-images names files of "
                                 f"{root / 'train' / 'images'})")
            (out / "train" / folder / name).symlink_to(source)
    (out / "test").symlink_to(root / "test")
    return out


def has_validation(epochs: list[dict]) -> bool:
    return all(entry["val_dice"] is not None for entry in epochs)


def summary(args: argparse.Namespace, epochs: list[dict]) -> list[str]:
    """What each margin keeps of the curve so far, in words."""
    lines = [f"{args.set}, seed {args.seed}, {len(epochs)} of {args.epochs} epochs of 200 steps"
             + (f", trained on {', '.join(args.train_images)} only" if args.train_images else "")
             + "; test Dice of the model each rule keeps:"]
    for margin in MARGINS if has_validation(epochs) else ():
        kept = select(epochs, margin)
        lines.append(f"margin {margin:g}: epoch {epochs[kept]['epoch']}, test Dice {epochs[kept]['test_dice']:.4f}")
    lines.append(f"last epoch: test Dice {epochs[-1]['test_dice']:.4f}")
    return lines


def write_curve(args: argparse.Namespace, epochs: list[dict]) -> None:
    """Write ``SET_seedN.json`` under ``--out``: the curve so far, and what each margin keeps."""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.set}_seed{args.seed}.json"
    partial = path.with_suffix(".json.partial")  # not *_seed*.json: --compare and --replay never see it half written
    logged = {"epochs": epochs, "planned_epochs": args.epochs, "rules": summary(args, epochs),
              **({"changes": dict(args.change)} if args.change else {}),
              **({"train_images": args.train_images} if args.train_images else {})}
    partial.write_text(json.dumps(logged, indent=1))
    partial.replace(path)


if __name__ == "__main__":
    main()
