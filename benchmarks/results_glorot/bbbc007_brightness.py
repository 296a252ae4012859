"""Do BBBC007 models follow the brightness of their input, and do the fallen ones score best on the test frames only
when these are brightened? (BENCHMARKS.md, "Is BBBC007's fall glorot's or seed 0's?")

For each checkpoint given (NAME=PATH), each of BBBC007's four frames is normalised as the checkpoint says, its
normalised intensities multiplied by k (0.8 to 1.3), and the pixel Dice of the prediction (sigmoid > 0.5; the frame
cropped to a multiple of 16) printed with the k where it peaks, then the recall and precision of the foreground at
k = 1. The checkpoints used were the moving averages of selection-study runs' last.pt (length_study.averaged_checkpoint
of their temporary run folders, which selection_study.py leaves in /tmp; commands.sh):

    python results_glorot/bbbc007_brightness.py glorot_5_seed0=G5.pt pytorch_40_seed0=P40.pt glorot_40_seed0=G40.pt

Without checkpoints it prints a baseline instead: one global threshold of the normalised intensity (the pixel task's
normalisation, the 1st and 99th percentiles), chosen on the two training frames, and its Dice on each frame.
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # levers_study beside this folder

from levers_study import read_frames  # noqa: E402
from unetkit import load_model  # noqa: E402

ROOT = Path.home() / ".cache/unetkit-study/sets/bbbc007"
SCALES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)


def frames():
    """Each BBBC007 frame: ``(split, name, image as (1, H, W) float32, foreground mask)``."""
    for split, path, image, truth in read_frames(ROOT):
        yield split, path.stem, image[None], truth


def threshold_baseline() -> None:
    from unetkit.data.normalize import Normalization

    normalised = [(split, stem, Normalization("percentile", 1.0, 99.0).apply(image)[0], truth)
                  for split, stem, image, truth in frames()]
    thresholds = np.linspace(0.02, 0.6, 59)

    def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
        return 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())

    chosen = max(thresholds, key=lambda t: np.mean([dice(n > t, truth) for split, _, n, truth in normalised
                                                   if split == "train"]))
    print(f"\none threshold chosen on the training frames: {chosen:.2f}\n")
    for split, stem, n, truth in normalised:
        print(f"- {split} {stem}: Dice {dice(n > chosen, truth):.3f}")


def main(named: list[str]) -> None:
    if not named:
        threshold_baseline()
        return
    torch.set_num_threads(1)
    print("| model | split | frame | " + " | ".join(f"k = {k:g}" for k in SCALES) + " | best k | recall, precision at k = 1 |")
    print("|---|---|---|" + "---|" * (len(SCALES) + 2))
    for item in named:
        name, _, path = item.partition("=")
        model, options = load_model(path)
        for split, stem, image, truth in frames():
            normalised = options.normalization.fitted(image).apply(image)
            height, width = (side // 16 * 16 for side in normalised.shape[1:])
            normalised, truth = normalised[:, :height, :width], truth[:height, :width]
            dice, at_one = [], ""
            for k in SCALES:
                with torch.no_grad():
                    predicted = model(torch.from_numpy(normalised * k)[None])[0, 0].numpy() > 0
                hits = (predicted & truth).sum()
                dice.append(2 * hits / (predicted.sum() + truth.sum()))
                if k == 1.0:
                    at_one = f"{hits / truth.sum():.3f}, {hits / max(predicted.sum(), 1):.3f}"
            print(f"| {name} | {split} | {stem} | " + " | ".join(f"{d:.3f}" for d in dice)
                  + f" | {SCALES[int(np.argmax(dice))]:g} | {at_one} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
