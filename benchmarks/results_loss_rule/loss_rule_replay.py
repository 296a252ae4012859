"""Replay the loss rule (the stopping rule of a run without validation images) on curves that record every epoch.

    python benchmarks/results_loss_rule/loss_rule_replay.py > benchmarks/results_loss_rule/loss_rule_replay.md

A run with a single training image holds out no validation image, so ``unetkit train`` ends it when the mean
training loss has not fallen by more than ``loss_min_drop`` (relative) for ``patience`` epochs, and keeps its last
epoch's model (the moving average of the weights). Curves:

- ``results_loss_rule/*.json``: one training image (``selection_study.py --train-images NAME``), every epoch's
  model scored on the set's test images: where each rule ends the run, the test Dice of the model it keeps there,
  and that minus the last epoch's of the curve (40 epochs where the run got that far);
- ``results_length_128/*.json``: the 40-epoch runs of 2026-12-04 on several training images (they record each
  epoch's training loss, not each epoch's model on the test images): only where each rule would end them, which
  is about what ``--val-fraction 0`` would do there (those runs trained without their validation image).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # selection_study beside this folder

from selection_study import rule_stop  # noqa: E402

PATIENCES = (2, 3, 4, 5, 6, 8)
LOSS_MIN_DROPS = (0.01, 0.02, 0.03, 0.05)


def loss_rule_stop(losses: list[float], patience: int, loss_min_drop: float) -> int | None:
    """After how many epochs the loss rule ends a run whose mean training loss per epoch is ``losses`` (None: it
    does not within them): the study's replay, told that no epoch had a validation score."""
    return rule_stop([{"val_dice": None, "loss": loss} for loss in losses], patience, loss_min_drop)


def single_image_table(curves: dict[str, dict]) -> list[str]:
    """Per rule and curve: the stop, the kept model's test Dice and its gap to the curve's last epoch; a rule that
    does not stop within a curve cut before its planned end is "-" there and left out of the worst gap and mean."""
    lines = ["| patience | drop | " + " | ".join(f"{name}: epochs, test Dice, - last epoch's" for name in curves)
             + " | worst gap | mean epochs |",
             "|---|---|" + "---|" * (len(curves) + 2)]
    for patience in PATIENCES:
        for drop in LOSS_MIN_DROPS:
            cells, gaps, lengths = [], [], []
            for logged in curves.values():
                epochs = logged["epochs"]
                stop = loss_rule_stop([entry["loss"] for entry in epochs], patience, drop)
                if stop is None and len(epochs) < logged["planned_epochs"]:
                    cells.append(f"- (not within {len(epochs)})")
                    continue
                stop = stop or len(epochs)  # a rule that never stops: the run's last epoch
                kept, last = epochs[stop - 1]["test_dice"], epochs[-1]["test_dice"]
                cells.append(f"{stop}, {kept:.4f}, {kept - last:+.4f}")
                gaps.append(kept - last)
                lengths.append(stop)
            summary = f"{min(gaps):+.4f} | {sum(lengths) / len(lengths):.1f}" if gaps else "- | -"
            lines.append(f"| {patience} | {drop:g} | " + " | ".join(cells) + f" | {summary} |")
    return lines


def stops_table(curves: dict[str, list[dict]]) -> list[str]:
    lines = ["| patience | drop | " + " | ".join(curves) + " |", "|---|---|" + "---|" * len(curves)]
    for patience in PATIENCES:
        for drop in LOSS_MIN_DROPS:
            stops = [loss_rule_stop([float(entry["loss"]) for entry in epochs], patience, drop) for epochs in curves.values()]
            lines.append(f"| {patience} | {drop:g} | " + " | ".join(str(stop or "-") for stop in stops) + " |")
    return lines


def main() -> None:
    single = {path.stem: json.loads(path.read_text()) for path in sorted(HERE.glob("*_seed*.json"))}
    with_validation = [name for name, logged in single.items() if any(e["val_dice"] is not None for e in logged["epochs"])]
    if with_validation:
        raise SystemExit(f"{', '.join(with_validation)}: these runs had validation images, so the loss rule "
                         "never decided their length")
    print("One training image (no validation): the epoch each rule ends the run, the test Dice of its last model "
          "there, and that minus the last epoch's of the curve\n")
    print("\n".join(f"- {name}: {len(logged['epochs'])} of {logged['planned_epochs']} epochs, trained on "
                    f"{', '.join(logged.get('train_images', ['all']))}" for name, logged in single.items()))
    print()
    print("\n".join(single_image_table(single)))
    several = {path.stem.replace("_128px_200steps", ""): json.loads(path.read_text())["epochs"]
               for path in sorted((HERE.parent / "results_length_128").glob("*_seed*.json"))}
    print("\nSeveral training images (results_length_128, 40 epochs, trained with one of them held out for "
          "validation): about where each rule would end such runs without validation, from their training loss "
          "(-: not within 40)\n")
    print("\n".join(stops_table(several)))


if __name__ == "__main__":
    main()
