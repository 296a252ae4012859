"""What glorot's BBBC007 model does on the test frames after its test Dice fell (BENCHMARKS.md, "Glorot's own 40
epochs"). Inputs: the moving average of the 40-epoch run's last.pt, taken while it ran (during epoch 30; test
Dice 0.919), written by length_study.averaged_checkpoint to /tmp/g_avg.pt, and
`unetkit predict /tmp/g_avg.pt ~/.cache/unetkit-study/sets/bbbc007/test/images --out /tmp/g_pred`.
Prints precision and recall of the foreground, and how much of each labelled nucleus the prediction covers.
"""

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

TEST = Path.home() / ".cache/unetkit-study/sets/bbbc007/test"


def main() -> None:
    for stem in ("A9_p9d", "A9_p10d"):
        predicted = np.array(Image.open(f"/tmp/g_pred/{stem}_labels.png")) > 0
        labels = tifffile.imread(TEST / "masks" / f"{stem}.tif")
        truth = labels > 0
        hits = (predicted & truth).sum()
        ids = np.unique(labels)[1:]
        covered = np.array([predicted[labels == i].mean() for i in ids])
        print(f"{stem}: precision {hits / predicted.sum():.3f}, recall {hits / truth.sum():.3f}; {len(ids)} nuclei: "
              f"{(covered < 0.1).sum()} under 10 % covered, {((covered >= 0.1) & (covered < 0.8)).sum()} 10-80 %, "
              f"{(covered >= 0.8).sum()} 80 % or more")


if __name__ == "__main__":
    main()
