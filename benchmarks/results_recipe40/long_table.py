"""The recipe's 40 epochs against the reference network's, epoch by epoch (issue 16, twenty-sixth session).

For each run logged in both ``results_selection/epochs40/`` (the reference network, PyTorch's start) and
``results_recipe40/`` (``--base-width 16 --weight-init glorot-pytorch-bias``; and ``pytorch_start/``, the quarter
width from PyTorch's start, where it was run): the test Dice of what ``best.pt``
holds (unetkit's margin, 0.003) after 5, 10, 15, 20, 30 and 40 epochs of 200 steps, the last epoch's own model
(a late fall shows there first), and where the stopping rule (patience 5) ends the run with what it keeps.

    python benchmarks/results_recipe40/long_table.py > benchmarks/results_recipe40/long_table.md   # from the root
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from selection_study import rule_stop, select  # noqa: E402
from unetkit.training.stopping import DEFAULT_PATIENCE  # noqa: E402

CUTS = (5, 10, 15, 20, 30, 40)


def row(name: str, epochs: list[dict]) -> str:
    kept = [f"{epochs[select(epochs[:cut], 0.003)]['test_dice']:.4f}" if cut <= len(epochs) else "-" for cut in CUTS]
    stop = rule_stop(epochs, patience=DEFAULT_PATIENCE["semantic"])  # pixels: 5
    ruled = "not within the curve" if stop is None else \
        f"{stop}: {epochs[select(epochs[:stop], 0.003)]['test_dice']:.4f}"
    best = max(entry["test_dice"] for entry in epochs)
    return f"| {name} | " + " | ".join(kept) + f" | {epochs[-1]['test_dice']:.4f} | {best:.4f} | {ruled} |"


def main() -> None:
    reference = HERE.parent / "results_selection" / "epochs40"
    print("| run | network | " + " | ".join(f"{cut} epochs" for cut in CUTS)
          + " | last epoch's model | best epoch's model | the rule (patience 5): epochs, kept |")
    print("|---|---|" + "---|" * (len(CUTS) + 3))
    for path in sorted(HERE.glob("*_seed*.json")):
        counterpart = reference / path.name
        quarter_pytorch = HERE / "pytorch_start" / path.name
        runs = [("recipe", path)] + ([("quarter width, PyTorch's start", quarter_pytorch)]
                                     if quarter_pytorch.is_file() else []) \
            + ([("reference", counterpart)] if counterpart.is_file() else [])
        for network, source in runs:
            epochs = json.loads(source.read_text())["epochs"]
            print(row(f"{path.stem} | {network}", epochs))


if __name__ == "__main__":
    main()
