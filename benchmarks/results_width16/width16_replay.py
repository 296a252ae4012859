"""What the narrower network (``--base-width 16``) keeps after 1,000 / 2,000 / 3,000 steps and where the rule ends it,
against 40 epochs of the reference network (today's default otherwise, the same seed).

    python benchmarks/results_width16/width16_replay.py > benchmarks/results_width16/width16_replay.md

Curves: ``results_width16/*.json`` (``selection_study.py --change base_width=16``: every epoch of 200 steps, its model
scored on the set's test images) and, with ``--curves``, any other folder of such curves (``results_trainall``: the
bacteria on all four training frames, no validation). Yardsticks: what ``best.pt`` keeps after 40 epochs of the
reference network (``--keep-within 0.003``) on ``results_selection/epochs40`` where that curve exists; for CHO and
cells3d, whose 40-epoch runs of today's default did not record every epoch's test Dice, the kept model's test Dice
from BENCHMARKS.md ("The new default's own 40 epochs on HeLa and CHO", "40 epochs of the new default on cells3d").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # selection_study beside this folder

from selection_study import rule_stop, select  # noqa: E402

KEEP_WITHIN = 0.003
PATIENCE = 5
CHECKPOINTS = (5, 10, 15)  # epochs of 200 steps: 1,000, 2,000, 3,000 steps
#: the reference network's 40 epochs where no every-epoch curve exists (BENCHMARKS.md, seventh and eighth sessions)
RECORDED_YARDSTICKS = {("cho", 0): 0.9509, ("cells3d", 0): 0.9706}


def yardstick(name: str, seed: int) -> float | None:
    curve = HERE.parent / "results_selection" / "epochs40" / f"{name}_seed{seed}.json"
    if curve.is_file():
        epochs = json.loads(curve.read_text())["epochs"]
        return epochs[select(epochs, KEEP_WITHIN)]["test_dice"]
    return RECORDED_YARDSTICKS.get((name, seed))


def row(path: Path, checkpoints: tuple[int, ...] = CHECKPOINTS) -> str:
    logged = json.loads(path.read_text())
    epochs = logged["epochs"]
    name, seed = path.stem.rsplit("_seed", 1)
    reference = yardstick(name, int(seed))
    cells = []
    for count in checkpoints:
        if count > len(epochs):
            cells.append("-")
            continue
        kept = epochs[select(epochs[:count], KEEP_WITHIN)]["test_dice"]
        cells.append(f"{kept:.4f}" + ("" if reference is None else f" ({kept - reference:+.4f})"))
    stop = rule_stop(epochs, PATIENCE)
    if stop is None:
        cells.append(f"not within {len(epochs)}")
    else:
        kept = epochs[select(epochs[:stop], KEEP_WITHIN)]["test_dice"]
        cells.append(f"{stop}, {kept:.4f}" + ("" if reference is None else f" ({kept - reference:+.4f})"))
    changes = ", ".join(f"{key}={value}" for key, value in logged.get("changes", {}).items())
    return (f"| {name} {seed} | {changes} | " + " | ".join(cells)
            + f" | {'-' if reference is None else f'{reference:.4f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, nargs="+", default=[HERE])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=list(CHECKPOINTS),
                        help="epochs of 200 steps after which to read what best.pt keeps")
    args = parser.parse_args()
    steps = [f"{200 * count:,} steps" for count in args.checkpoints]
    print(f"Test Dice of what best.pt keeps (--keep-within {KEEP_WITHIN}) after {' / '.join(steps)}, and where "
          f"the rule (patience {PATIENCE}) ends the run; in brackets: minus the reference network's 40 epochs.\n")
    print(f"| set, seed | changes | {' | '.join(steps)} | the rule: epochs, Dice | reference, 40 epochs |")
    print("|---|---|" + "---|" * len(steps) + "---|---|")
    for folder in args.curves:
        for path in sorted(folder.rglob("*_seed*.json")):
            print(row(path, tuple(args.checkpoints)))


if __name__ == "__main__":
    main()
