"""Which way of separating touching objects to make the default: every method on the same budget.

    python benchmarks/instances_study.py --steps 200 --sets hela cells3d bbbc007   # ~45 min on 2 cores

For each set of :mod:`public_data` (train and test splits, instance labels), each method is
trained for the same budget: the same number of steps of the same network (the reference
U-Net, unetkit's defaults, batch 4 of 256 px, no validation split: every training image
trains), so that the comparison holds on a machine whose load varies; the wall time of the
training is reported beside it. Then it is scored on the test images:

- the three instance methods (``--task instances --instance-method ...``);
- connected components of a semantic (foreground) model trained the same way;
- Otsu's threshold and a distance-transform watershed, no training (the classic baseline;
  its seeds' minimum distance is set from the training objects' median size).

Columns: AP@0.5 (TP / (TP + FP + FN)), F1@0.5, SEG, pixel Dice, and the time per megapixel
of the network (tiled prediction) and of the post-processing, measured apart; the JSON also
holds AP@0.5 and F1 with the objects that touch the image border left out of both sides
(``*_inner``: the sample's labels omit most of them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from public_data import CACHE, build

from unetkit import TrainConfig, train
from unetkit.data.dataset import load_image_planes
from unetkit.inference.loading import load_predictor
from unetkit.instances import instances_from_probabilities
from unetkit.instances.scores import object_scores
from unetkit.tiling import TileOptions, predict_tiled

METHODS = ("distance", "three-class", "border-weights", "semantic + connected components", "Otsu + watershed")


def test_pairs(root: Path) -> list[tuple[np.ndarray, np.ndarray, Path]]:
    images = sorted((root / "test" / "images").glob("*.tif"))
    return [(tifffile.imread(p), tifffile.imread(root / "test" / "masks" / p.name), p) for p in images]


def train_method(root: Path, method: str, steps: int, seed: int) -> tuple[Path, float]:
    out = Path(tempfile.mkdtemp()) / method.replace(" ", "")
    task = dict(task="semantic", mask_mode="instances") if method.startswith("semantic") else \
        dict(task="instances", instance_method=method)
    config = TrainConfig(out=str(out), data=str(root / "train"), val_fraction=0.0, epochs=steps // 50,
                         steps_per_epoch=50, patch_size=256, progress=False, seed=seed, **task)
    start = time.perf_counter()
    train(config, report=lambda text: None)
    return out / "best.pt", time.perf_counter() - start


def otsu_watershed(image: np.ndarray, radius: float) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed

    smooth = gaussian(image.astype(np.float32), sigma=1, preserve_range=True)
    foreground = smooth > threshold_otsu(smooth)
    distance = ndi.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=max(2, int(radius * 0.6)), labels=ndi.label(foreground)[0],
                           exclude_border=False)
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground)


def median_radius(root: Path) -> float:
    areas = []
    for path in (root / "train" / "masks").glob("*.tif"):
        labels = tifffile.imread(path)
        areas += np.bincount(labels.ravel())[1:][np.bincount(labels.ravel())[1:] > 0].tolist()
    return float(np.sqrt(np.median(areas) / np.pi))


def score(root: Path, method: str, checkpoint: Path | None) -> dict[str, float]:
    rows, inner_rows, network_s, post_s, megapixels = [], [], 0.0, 0.0, 0.0
    radius = median_radius(root)
    loaded = load_predictor(checkpoint) if checkpoint is not None else None
    pairs = test_pairs(root)
    if loaded is not None:  # the first call builds the kernels: not counted
        predict_tiled(loaded.predictor, load_image_planes(pairs[0][2], loaded.data_options.normalization)[0][2])
    for image, truth, path in pairs:
        megapixels += image.shape[0] * image.shape[1] / 1e6
        if loaded is None:
            start = time.perf_counter()
            labels = otsu_watershed(image if image.ndim == 2 else image[..., 0], radius)
            post_s += time.perf_counter() - start
        else:
            _, _, normalised = load_image_planes(path, loaded.data_options.normalization)[0]
            start = time.perf_counter()
            outputs = predict_tiled(loaded.predictor, normalised, TileOptions())
            network_s += time.perf_counter() - start
            start = time.perf_counter()
            if method.startswith("semantic"):
                labels = instances_from_probabilities(outputs, method="foreground")
            else:
                labels = loaded.task.labels(outputs)
            post_s += time.perf_counter() - start
        rows.append(object_scores(labels, truth))
        inner_rows.append(object_scores(labels, truth, ignore_border_objects=True))
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("ap50", "f1", "seg", "dice")}
    mean.update({f"{k}_inner": float(np.nanmean([r[k] for r in inner_rows])) for k in ("ap50", "f1")})
    mean["network_s_per_mp"] = network_s / megapixels
    mean["post_s_per_mp"] = post_s / megapixels
    return mean


def study_parser(description: str, steps_help: str) -> argparse.ArgumentParser:
    """The options every object study shares: sets, training steps, seed, data cache, JSON output."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["hela", "cells3d", "bbbc007"])  # CHO's ids repeat: not instances
    parser.add_argument("--steps", type=int, default=200, help=f"training steps {steps_help} (a multiple of 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def main() -> None:
    parser = study_parser(__doc__, "per method and set")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.steps} training steps per method")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for set_name in args.sets:
        root = build(set_name, args.cache)
        for method in args.methods:
            checkpoint, seconds = (None, 0.0) if method.startswith("Otsu") else \
                train_method(root, method, args.steps, args.seed)
            results.setdefault(set_name, {})[method] = {**score(root, method, checkpoint), "train_s": seconds}
            print(set_name, method, json.dumps(results[set_name][method]), flush=True)
    print("\n| set | method | AP@0.5 | F1@0.5 | SEG | Dice | training s | network s/MP | post-processing s/MP |")
    print("|---|---|---|---|---|---|---|---|---|")
    for set_name, by_method in results.items():
        for method, r in by_method.items():
            print(f"| {set_name} | {method} | {r['ap50']:.3f} | {r['f1']:.3f} | {r['seg']:.3f} | {r['dice']:.3f} | "
                  f"{r['train_s']:.0f} | {r['network_s_per_mp']:.2f} | {r['post_s_per_mp']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
