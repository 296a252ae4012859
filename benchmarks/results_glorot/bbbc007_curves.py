"""BBBC007's 40-epoch curves side by side (BENCHMARKS.md, "Twelfth session"): the test Dice of every epoch's model
(the moving average of the weights), then the validation Dice, at a few epochs; PyTorch's default from
results_selection/epochs40/, glorot from results_glorot/epochs40/. Run from benchmarks/."""

import json
from pathlib import Path

EPOCHS = (1, 5, 10, 15, 20, 23, 25, 28, 30, 33, 35, 38, 40)
RUNS = [("PyTorch", "results_selection", 0), ("PyTorch", "results_selection", 1),
        ("glorot", "results_glorot", 0), ("glorot", "results_glorot", 1), ("glorot", "results_glorot", 2)]


def main() -> None:
    print("| run | " + " | ".join(f"epoch {e}" for e in EPOCHS) + " |")
    print("|---|" + "---|" * len(EPOCHS))
    for key in ("test_dice", "val_dice"):
        for name, folder, seed in RUNS:
            path = Path(folder) / "epochs40" / f"bbbc007_seed{seed}.json"
            curve = {entry["epoch"]: entry[key] for entry in json.loads(path.read_text())["epochs"]}
            label = f"{name}, seed {seed}" + (": validation" if key == "val_dice" else "")
            print(f"| {label} | " + " | ".join(f"{curve[e]:.3f}" if e in curve else "" for e in EPOCHS) + " |")


if __name__ == "__main__":
    main()
