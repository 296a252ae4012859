"""Dice of a one-class pixel model's probabilities at several thresholds, image by image, averaged per folder.

    python benchmarks/results_width16_glorot_weights/threshold_scan.py RUN/best.pt FOLDER [FOLDER ...]

A study of whether BBBC007's shortfall with glorot's start is the 0.5 threshold (narrow or wide masks): each FOLDER
(images/ + masks/, object labels scored as foreground) is predicted as ``unetkit evaluate`` predicts it.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from unetkit.data.dataset import load_labelled
from unetkit.data.sample import resolve_data_source, resolve_mask_mode
from unetkit.inference.loading import load_predictor
from unetkit.tiling import TileOptions, predict_tiled

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def folder_dice(loaded, folder: str) -> np.ndarray:
    """The mean over the folder's images of each threshold's Dice."""
    source, _ = resolve_data_source(folder)
    options = dataclasses.replace(loaded.data_options, mask_mode=resolve_mask_mode(folder, "instances"))
    samples = load_labelled(source, options, in_channels=loaded.predictor.in_channels, options_can_change=False,
                            notes=[])
    rows = []
    for sample in samples:
        foreground = np.asarray(predict_tiled(loaded.predictor, sample.image, TileOptions()))[-1]
        truth = np.asarray(sample.mask) > 0
        rows.append([2 * np.count_nonzero((foreground > t) & truth) / (np.count_nonzero(foreground > t) + truth.sum())
                     for t in THRESHOLDS])
    return np.mean(rows, axis=0)


def main() -> None:
    loaded = load_predictor(sys.argv[1], device="cpu", precision="auto")
    for folder in sys.argv[2:]:
        print(folder, " ".join(f"{t}: {d:.4f}" for t, d in zip(THRESHOLDS, folder_dice(loaded, folder))))


if __name__ == "__main__":
    main()
