"""Replay the stopping rule with other patiences on the 40-epoch curves that record every epoch's test Dice.

    python benchmarks/results_patience/patience_replay.py > benchmarks/results_patience/patience_replay.md
    python benchmarks/results_patience/patience_replay.py --logs RUN/log.csv ...   # where each patience ends a run's log

Curves: ``results_selection/epochs40/*.json`` (PyTorch's default start, every epoch's model scored on the test
frames; ``selection_study.py``). For each patience (margin 0.003 as today's rule) and each run: the epoch the rule
ends it, the test Dice of what ``best.pt`` keeps there (``--keep-within 0.003``), and that minus what 40 epochs keep.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # selection_study beside this folder

from selection_study import rule_stop, select  # noqa: E402

PATIENCES = (3, 4, 5, 6, 8, 10)
KEEP_WITHIN = 0.003


def log_table(logs: list[Path]) -> list[str]:
    """The epoch each patience ends each run of ``logs`` (unetkit's log.csv: the validation Dice per epoch), and that
    epoch's validation Dice; "-": not within the log (a run the rule ended has no epochs past its own stop)."""
    lines = ["| run | " + " | ".join(f"patience {patience}" for patience in PATIENCES) + " |",
             "|---|" + "---|" * len(PATIENCES)]
    for log in logs:
        with open(log) as handle:
            epochs = [{"val_dice": float(row["val_dice"])} for row in csv.DictReader(handle)]
        stops = [rule_stop(epochs, patience) for patience in PATIENCES]
        cells = [f"{stop}, {epochs[stop - 1]['val_dice']:.4f}" if stop else "-" for stop in stops]
        lines.append(f"| {log} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", nargs="+", type=Path, help="runs' log.csv files: where each patience ends them")
    args = parser.parse_args()
    if args.logs:
        print("\n".join(log_table(args.logs)))
        return
    paths = sorted((HERE.parent / "results_selection" / "epochs40").glob("*.json"))
    curves = {path.stem: json.loads(path.read_text())["epochs"] for path in paths}
    print("| patience | " + " | ".join(f"{name}: epochs, test Dice, - 40 epochs" for name in curves)
          + " | worst gap | mean epochs |")
    print("|---|" + "---|" * (len(curves) + 2))
    for patience in PATIENCES:
        cells, gaps, lengths = [], [], []
        for epochs in curves.values():
            stop = rule_stop(epochs, patience) or len(epochs)  # a rule that never stops: all 40 epochs
            kept = epochs[select(epochs[:stop], KEEP_WITHIN)]["test_dice"]
            full = epochs[select(epochs, KEEP_WITHIN)]["test_dice"]
            cells.append(f"{stop}, {kept:.4f}, {kept - full:+.4f}")
            gaps.append(kept - full)
            lengths.append(stop)
        print(f"| {patience} | " + " | ".join(cells) + f" | {min(gaps):+.4f} | {sum(lengths) / len(lengths):.1f} |")


if __name__ == "__main__":
    main()
