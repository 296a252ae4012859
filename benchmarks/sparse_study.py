"""Do two models of the same set differ on images with few objects? Pixel Dice by crop density.

    python benchmarks/sparse_study.py --pair hela RUN_A/best.pt RUN_B/best.pt --pair cho ... # ~5 min a set

No public set used here has images with few objects: their frames are 9 to 51 % nuclei. A
user's images may be sparse, and the percentile normalisation (unetkit's default) behaves
differently there: when under 1 % of the pixels are objects, the 99th percentile falls among
the background, so the objects come out brighter than the network saw them in training.
This study takes crops of the set's *test* frames, each normalised on its own by each model's
own normalisation, as if a user had handed in an image of that size, and bins them by their
share of labelled foreground:

- crops with no labelled object (under 0.05 % of the pixels, border cuts): the share of the
  crop that a model calls foreground (false positives; 0 is right);
- crops with objects: the pixel Dice of the foreground per crop (median and mean), and the
  paired mean difference of the second model minus the first on the same crops.

Crops are drawn at random positions (seeded) until every bin holds ``--per-bin`` crops or
``--tries`` positions were drawn, so the sparse bins are not starved by the crowded frames.
The models are any two checkpoints of one set (two normalisations, two lengths of training):
``--pair SET FIRST SECOND``, repeated per set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from instances_study import test_pairs
from public_data import CACHE, build

from unetkit.inference.loading import LoadedPredictor, load_predictor
from unetkit.metrics import dice_iou
from unetkit.scoring import predict_labels

EMPTY = 0.0005
BINS = ((0.0, EMPTY), (EMPTY, 0.02), (0.02, 0.08), (0.08, 0.2), (0.2, 1.0))


def draw_crops(frames: list[tuple[np.ndarray, np.ndarray]], side: int, per_bin: int, tries: int,
               seed: int) -> dict[tuple[float, float], list[tuple[np.ndarray, np.ndarray]]]:
    """Up to ``per_bin`` crops (image, foreground) per share-of-foreground bin, from random
    positions in random frames."""
    rng = np.random.default_rng(seed)
    crops: dict[tuple[float, float], list[tuple[np.ndarray, np.ndarray]]] = {bin_: [] for bin_ in BINS}
    for _ in range(tries):
        image, foreground = frames[int(rng.integers(len(frames)))]
        size = min(side, *image.shape)
        y, x = (int(rng.integers(0, extent - size + 1)) for extent in image.shape)
        crop_foreground = foreground[y:y + size, x:x + size]
        share = float(crop_foreground.mean())
        for low, high in BINS:
            if low <= share < high and len(crops[(low, high)]) < per_bin:
                crops[(low, high)].append((image[y:y + size, x:x + size], crop_foreground))
        if all(len(found) >= per_bin for found in crops.values()):
            break
    return crops


def foreground_of(loaded: LoadedPredictor, crop: np.ndarray) -> np.ndarray:
    """The model's foreground on a crop normalised on its own, as a whole image would be."""
    normalised = loaded.data_options.normalization.apply(crop[None].astype(np.float32))
    return predict_labels(loaded.predictor, normalised, task=loaded.task) > 0


def study_set(set_name: str, checkpoints: tuple[Path, Path], side: int, per_bin: int, tries: int, seed: int) -> None:
    frames = [(image.astype(np.float32), labels > 0) for image, labels, _ in test_pairs(build(set_name, CACHE))]
    models = [load_predictor(path) for path in checkpoints]
    for path, loaded in zip(checkpoints, models):
        print(f"{set_name}: {path} normalisation {loaded.data_options.normalization.to_dict()}")
    crops = draw_crops(frames, side, per_bin, tries, seed)
    print(f"\n| {set_name}, crops of {side} px | crops | first: Dice median / mean (share called foreground) | "
          "second | second - first, mean (paired) |")
    print("|---|---|---|---|---|")
    for (low, high), found in crops.items():
        if not found:
            print(f"| {low:.2%} to {high:.2%} foreground | 0 | - | - | - |")
            continue
        predictions = [[foreground_of(loaded, crop) for crop, _ in found] for loaded in models]
        if high <= EMPTY:
            shares = [np.array([p.mean() for p in predicted]) for predicted in predictions]
            cells = [f"({share.mean():.2%})" for share in shares]
            difference = f"{shares[1].mean() - shares[0].mean():+.2%} of the crop"
        else:
            scores = [np.array([dice_iou(p, truth, num_classes=2).mean_dice for p, (_, truth) in zip(predicted, found)])
                      for predicted in predictions]
            cells = [f"{np.median(score):.4f} / {score.mean():.4f}" for score in scores]
            difference = f"{(scores[1] - scores[0]).mean():+.4f}"
        print(f"| {low:.2%} to {high:.2%} foreground | {len(found)} | {cells[0]} | {cells[1]} | {difference} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=3, action="append", required=True, metavar=("SET", "FIRST", "SECOND"),
                        help="a set and two checkpoints trained on it (repeat per set)")
    parser.add_argument("--side", type=int, default=192, help="crop side in px")
    parser.add_argument("--per-bin", type=int, default=40, help="crops per share-of-foreground bin and set")
    parser.add_argument("--tries", type=int, default=200_000, help="random positions drawn at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for set_name, first, second in args.pair:
        study_set(set_name, (Path(first), Path(second)), args.side, args.per_bin, args.tries, args.seed)


if __name__ == "__main__":
    main()
