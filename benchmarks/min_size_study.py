"""Should an instance model's smallest object follow its training labels? Rules scored on test images.

    python benchmarks/min_size_study.py --sets hela cells3d bbbc007   # ~5 min a set on 2 cores

Objects smaller than ``min_size`` pixels are dropped after the watershed (and seeds smaller
than a quarter of it). The default is a fixed 10 px; on the sample, 80 px removed most of the
debris that the network calls nuclei (BENCHMARKS.md, "Objects"), but a fixed 80 px would drop
real objects of a set whose nuclei are small. This study trains the default method (distance)
on each set's training split for ``--steps`` steps (the instances study's budget; the model is
kept in the cache and reused), predicts each test image once, and scores the objects under
each rule:

- fixed sizes;
- a size taken from the training labels: a fraction of a low percentile, or of the median,
  of the areas of the training objects that do not touch the image border (objects the border
  cuts are not their real size), never below 10 px.

Columns: F1@0.5 and AP@0.5 over all objects, and with border objects left out (``inner``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
import torch
from skimage.segmentation import clear_border

from instances_study import study_parser, test_pairs, train_method
from public_data import build

from unetkit.data.dataset import load_image_planes
from unetkit.inference.loading import load_predictor
from unetkit.instances import postprocess
from unetkit.instances.scores import object_scores
from unetkit.tiling import TileOptions, predict_tiled


def training_areas(root: Path) -> np.ndarray:
    """Areas of the training objects that do not touch the image border."""
    areas: list[int] = []
    for path in sorted((root / "train" / "masks").glob("*.tif")):
        counts = np.bincount(clear_border(tifffile.imread(path)).ravel())[1:]
        areas += counts[counts > 0].tolist()
    return np.asarray(areas)


def derived(fraction: float, statistic: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], int]:
    return lambda areas: max(10, int(fraction * statistic(areas))) if len(areas) else 10


RULES: dict[str, Callable[[np.ndarray], int]] = {
    "fixed 10 (default)": lambda areas: 10,
    "fixed 30": lambda areas: 30,
    "fixed 80": lambda areas: 80,
    "0.5 x 1st percentile": derived(0.5, lambda a: np.percentile(a, 1)),
    "0.25 x 5th percentile": derived(0.25, lambda a: np.percentile(a, 5)),
    "0.5 x 5th percentile": derived(0.5, lambda a: np.percentile(a, 5)),
    "median / 8": derived(1 / 8, np.median),
}


def model_for(root: Path, set_name: str, steps: int, seed: int, cache: Path) -> Path:
    kept = cache / "min-size-models" / f"{set_name}-{steps}.pt"
    if not kept.is_file():
        checkpoint, _ = train_method(root, "distance", steps, seed)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(checkpoint.read_bytes())
    return kept


def study_each_set(args: argparse.Namespace, study_set: Callable[[Path, Path], dict]) -> dict[str, dict]:
    """``study_set(test data root, the set's cached default model)`` for each of ``args.sets``."""
    torch.manual_seed(args.seed)
    results = {}
    for set_name in args.sets:
        root = build(set_name, args.cache)
        results[set_name] = study_set(root, model_for(root, set_name, args.steps, args.seed, args.cache))
        print(f"{set_name}: scored", flush=True)
    return results


def study_set(root: Path, checkpoint: Path) -> dict[str, dict[str, float]]:
    loaded = load_predictor(checkpoint)
    task = loaded.task
    areas = training_areas(root)
    outputs = []
    for _, truth, path in test_pairs(root):
        _, _, normalised = load_image_planes(path, loaded.data_options.normalization)[0]
        outputs.append((predict_tiled(loaded.predictor, normalised, TileOptions()), truth))
    results = {}
    for name, rule in RULES.items():
        size = rule(areas)
        rows, inner = [], []
        for output, truth in outputs:
            labels = postprocess.labels_from_distance(np.asarray(output, np.float32), task.threshold,
                                                      task.seed_height, size)
            rows.append(object_scores(labels, truth))
            inner.append(object_scores(labels, truth, ignore_border_objects=True))
        results[name] = {"min_size": size, **{k: float(np.mean([r[k] for r in rows])) for k in ("f1", "ap50")},
                         **{f"{k}_inner": float(np.mean([r[k] for r in inner])) for k in ("f1", "ap50")}}
    return results


def main() -> None:
    args = study_parser(__doc__, "per set").parse_args()
    results = study_each_set(args, study_set)
    print("\n| rule | " + " | ".join(f"{s}: px, F1, F1 inner" for s in results) + " | mean F1 | mean F1 inner |")
    print("|---|" + "---|" * (len(results) + 2))
    for rule in RULES:
        cells = [f"{r[rule]['min_size']}, {r[rule]['f1']:.3f}, {r[rule]['f1_inner']:.3f}" for r in results.values()]
        f1 = np.mean([r[rule]["f1"] for r in results.values()])
        f1_inner = np.mean([r[rule]["f1_inner"] for r in results.values()])
        print(f"| {rule} | " + " | ".join(cells) + f" | {f1:.3f} | {f1_inner:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
