"""Does a minimum object size chosen on the validation images beat the fixed 10 px on test images?

    python benchmarks/calibration_study.py --sets hela cells3d bbbc007 bacteria   # ~4 min a set on 2 cores

For each set, the default instance method (distance) is trained for ``--steps`` steps with
training's own validation split (``val_fraction`` 0.2 of the training images, seed
``--seed``: what ``unetkit train`` holds out); :mod:`unetkit.instances.calibrate` picks the
size on those validation images; the test images are then scored (F1@0.5 over all objects,
and with border objects left out) at 10 px, at the chosen size, and at every candidate (what
hindsight would pick). The trained model is kept in the cache and reused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from instances_study import study_parser, test_pairs
from public_data import build

from unetkit import TrainConfig, train
from unetkit.data.dataset import load_image_planes, load_training_data
from unetkit.inference.loading import load_predictor
from unetkit.instances import postprocess
from unetkit.instances.calibrate import CANDIDATE_SIZES, SizeCalibration
from unetkit.instances.scores import object_scores
from unetkit.tiling import TileOptions, predict_tiled
from unetkit.training.setup import data_options_for


def trained(root: Path, set_name: str, steps: int, seed: int, cache: Path) -> tuple[Path, TrainConfig]:
    """The set's model trained with a validation split (cached), and its config."""
    out = cache / "calibration-models" / f"{set_name}-{steps}-{seed}"
    config = TrainConfig(out=str(out), data=str(root / "train"), task="instances", epochs=steps // 50,
                         steps_per_epoch=50, progress=False, seed=seed)
    if not (out / "best.pt").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        train(config, report=lambda text: None)
    return out / "best.pt", config


def unfiltered_outputs(loaded, images: list[np.ndarray]) -> list[np.ndarray]:
    task = loaded.task
    return [postprocess.labels_from_distance(np.asarray(predict_tiled(loaded.predictor, image, TileOptions()),
                                                        np.float32), task.threshold, task.seed_height, 1)
            for image in images]


def study_set(root: Path, set_name: str, steps: int, seed: int, cache: Path) -> dict:
    checkpoint, config = trained(root, set_name, steps, seed, cache)
    loaded = load_predictor(checkpoint)
    _, val = load_training_data(config.data, data_options_for(config), val_fraction=config.val_fraction, seed=seed)
    val_labels = unfiltered_outputs(loaded, [s.image for s in val])
    calibration = SizeCalibration()
    for labels, sample in zip(val_labels, val):
        calibration.add(labels, sample.mask)
    chosen = CANDIDATE_SIZES[calibration.choose()]
    totals = calibration.totals()
    sums, counts = np.array(totals[: len(CANDIDATE_SIZES)]), np.array(totals[len(CANDIDATE_SIZES):])
    pairs = test_pairs(root)
    test_images = [load_image_planes(path, loaded.data_options.normalization)[0][2] for _, _, path in pairs]
    test_labels = unfiltered_outputs(loaded, test_images)
    by_size = {}
    for size in CANDIDATE_SIZES:
        kept = [postprocess.finish(labels, size) for labels in test_labels]
        by_size[size] = {
            "f1": float(np.mean([object_scores(k, truth)["f1"] for k, (_, truth, _) in zip(kept, pairs)])),
            "f1_inner": float(np.mean([object_scores(k, truth, True)["f1"] for k, (_, truth, _) in zip(kept, pairs)])),
        }
    return {"validation_images": [s.name for s in val], "validation_f1": (sums / np.maximum(counts, 1)).tolist(),
            "validation_counts": counts.tolist(), "chosen": chosen, "test": by_size}


def main() -> None:
    args = study_parser(__doc__, "per set").parse_args()
    torch.manual_seed(args.seed)
    results = {}
    for set_name in args.sets:
        results[set_name] = study_set(build(set_name, args.cache), set_name, args.steps, args.seed, args.cache)
        print(f"{set_name}: {json.dumps(results[set_name])}", flush=True)
    print("\n| set | chosen on validation | test F1 at 10 px | at the chosen size | best size in hindsight |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        test = result["test"]
        hindsight = max(test, key=lambda size: test[size]["f1"])
        print(f"| {name} | {result['chosen']} px | {test[10]['f1']:.3f} ({test[10]['f1_inner']:.3f} inner) | "
              f"{test[result['chosen']]['f1']:.3f} ({test[result['chosen']]['f1_inner']:.3f}) | "
              f"{hindsight} px: {test[hindsight]['f1']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
