"""Which seeds split touching nuclei best? The distance method's seed rules scored on test images.

    python benchmarks/seeds_study.py --sets hela cells3d bbbc007   # ~1 min a set once its model is cached

The distance method grows one object from each seed, so the seed rule decides what is split
and what is merged. The study takes the default method's model of each set (trained
``--steps`` steps on the training split as in ``min_size_study.py``, kept in the cache and
shared with it), predicts each test image once, and scores the objects under each rule:

- ``share 0.7``: the earlier rule: where the distance exceeds 0.7 of the highest distance
  in its connected piece of foreground;
- ``hill tops h, smoothing s``: today's rule (:func:`unetkit.instances.postprocess.hill_tops`):
  the tops of the distance, smoothed by a Gaussian of ``s`` px, that rise at least ``h``
  above the saddle to any higher top; ``h 0.1, smoothing 1`` is the default.

Columns: F1@0.5, AP@0.5 and SEG over every object, and the post-processing's seconds per
megapixel beside the network's, both measured in this run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from instances_study import study_parser, test_pairs
from min_size_study import study_each_set

from unetkit.data.dataset import load_image_planes
from unetkit.inference.loading import load_predictor
from unetkit.instances import postprocess
from unetkit.instances.scores import object_scores
from unetkit.tiling import TileOptions, predict_tiled

Rule = Callable[[np.ndarray], np.ndarray]


def share_of_highest(outputs: np.ndarray, share: float = 0.7, threshold: float = 0.5, min_size: int = 10) -> np.ndarray:
    """The earlier seed rule (unetkit before the hill tops), kept here to compare against."""
    foreground = outputs[0] > threshold
    distance = outputs[1]
    pieces, count = ndi.label(foreground, structure=postprocess.FOUR_CONNECTED)
    highest = np.zeros(count + 1, np.float32)
    if count:
        highest[1:] = ndi.maximum(distance, pieces, np.arange(1, count + 1))
    seeds = postprocess.connected_seeds((distance > share * highest[pieces]) & foreground, max(1, min_size // 4))
    labels = watershed(-distance, seeds, mask=foreground)
    return postprocess.finish(postprocess.add_unseeded(labels, foreground), min_size)


def hill_top_rule(height: float, smoothing: float, threshold: float = 0.5, min_size: int = 10) -> Rule:
    """Today's rule with another height and smoothing (the library's own at 0.1 and 1 px)."""
    def rule(outputs: np.ndarray) -> np.ndarray:
        foreground = outputs[0] > threshold
        smooth = np.where(foreground, ndi.gaussian_filter(outputs[1], smoothing), 0).astype(np.float32)
        seeds, _ = ndi.label(postprocess.hill_tops(smooth, height) & foreground, structure=postprocess.FOUR_CONNECTED)
        labels = watershed(-smooth, seeds, mask=foreground)
        return postprocess.finish(postprocess.add_unseeded(labels, foreground), min_size)
    return rule


def rules() -> dict[str, Rule]:
    found: dict[str, Rule] = {"share 0.7 (earlier default)": share_of_highest}
    found["hill tops h 0.1, smoothing 1 (default)"] = lambda outputs: postprocess.labels_from_distance(outputs)
    for smoothing in (0.5, 1.0, 2.0):
        for height in (0.05, 0.075, 0.1, 0.125, 0.15, 0.2):
            if (height, smoothing) != (0.1, 1.0):
                found[f"hill tops h {height}, smoothing {smoothing:g}"] = hill_top_rule(height, smoothing)
    return found


def study_set(root: Path, checkpoint: Path) -> dict[str, dict[str, float]]:
    loaded = load_predictor(checkpoint)
    outputs, network_s, pixels = [], 0.0, 0
    for _, truth, path in test_pairs(root):
        _, _, normalised = load_image_planes(path, loaded.data_options.normalization)[0]
        start = time.perf_counter()
        output = np.asarray(predict_tiled(loaded.predictor, normalised, TileOptions()), np.float32)
        network_s += time.perf_counter() - start
        pixels += truth.size
        outputs.append((output, truth))
    results = {}
    for name, rule in rules().items():
        rows, post_s = [], 0.0
        for output, truth in outputs:
            start = time.perf_counter()
            labels = rule(output)
            post_s += time.perf_counter() - start
            rows.append(object_scores(labels, truth))
        results[name] = {**{key: float(np.mean([row[key] for row in rows])) for key in ("f1", "ap50", "seg", "dice")},
                         "post_s_per_mp": post_s / pixels * 1e6, "network_s_per_mp": network_s / pixels * 1e6}
    return results


def main() -> None:
    args = study_parser(__doc__, "per set").parse_args()
    results = study_each_set(args, study_set)
    print("\n| seed rule | " + " | ".join(f"{s}: F1, AP@0.5, SEG, post s/MP" for s in results) + " | mean F1 |")
    print("|---|" + "---|" * (len(results) + 1))
    for rule in rules():
        cells = [f"{r[rule]['f1']:.3f}, {r[rule]['ap50']:.3f}, {r[rule]['seg']:.3f}, {r[rule]['post_s_per_mp']:.2f}"
                 for r in results.values()]
        print(f"| {rule} | " + " | ".join(cells) + f" | {np.mean([r[rule]['f1'] for r in results.values()]):.3f} |")
    print("network s/MP: " + ", ".join(f"{s} {r[next(iter(r))]['network_s_per_mp']:.2f}" for s, r in results.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
