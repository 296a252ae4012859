"""Why does batch normalisation cost BBBC007 Dice? Its running statistics, or what it learns?

A run with ``--batch-norm`` predicts with the running means and variances its training batches left (4 patches
of 128 px, two thirds of them centred on foreground). Whole images at prediction time may have other statistics.
This study scores one trained ``best.pt`` on the set's test images three ways:

- ``running``: as unetkit predicts (eval mode, the running statistics);
- ``recomputed``: the statistics recomputed on the images the run trained on (its own split of the set's
  training images: the held-out validation images left out), whole and normalised as prediction normalises them
  (one forward pass each in train mode with a cumulative average, no weight changes);
- ``per image``: every batch-norm layer normalising with the statistics of what it predicts (train mode, no
  weight changes): of each batch of tiles, which is each whole image where an image fits one tile (BBBC007's
  450 x 450 px do).

If ``recomputed`` or ``per image`` close the gap to a run without batch normalisation, the statistics are the cause.

    python benchmarks/batchnorm_stats_study.py --set bbbc007 --run RUN   # RUN: a finished `unetkit train` folder
                                                                          # of the set's train/ images
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

from length_study import test_dice_of
from public_data import CACHE, build
from unetkit.data.dataset import DataOptions, load_training_data
from unetkit.inference.loading import LoadedPredictor, load_predictor
from unetkit.inference.predictor import TorchPredictor
from unetkit.training.state import stored_config


def batch_norms(model: torch.nn.Module) -> list[torch.nn.BatchNorm2d]:
    return [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]


def whole_image_tensor(image: np.ndarray, multiple: int) -> torch.Tensor:
    """The normalised image (C, H, W) cropped to a multiple of the network's size step, as a batch of one."""
    height, width = (side - side % multiple for side in image.shape[-2:])
    return torch.from_numpy(np.ascontiguousarray(image[..., :height, :width])).float()[None]


def trained_on(run: Path, train_root: Path, options: DataOptions) -> list:
    """The samples of ``train_root`` that the run trained on: its own seeded split, the validation images out."""
    config = stored_config(run)
    return load_training_data(train_root, options, val_fraction=config.val_fraction, seed=config.seed,
                              val_split=config.val_split)[0]


def recomputed(loaded: LoadedPredictor, run: Path, train_root: Path) -> LoadedPredictor:
    """``loaded`` with its batch-norm statistics averaged over the whole images the run trained on."""
    model = copy.deepcopy(loaded.predictor.model).float().to(memory_format=torch.contiguous_format)
    for layer in batch_norms(model):
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the passes
    options = DataOptions(num_classes=1, mask_mode="instances", normalization=loaded.data_options.normalization)
    model.train()
    with torch.no_grad():
        for sample in trained_on(run, train_root, options):
            print(f"recomputing the statistics on {sample.name}", file=sys.stderr)
            model(whole_image_tensor(sample.image, 2 ** model.config.depth))
    model.eval()
    return LoadedPredictor(TorchPredictor(model, None, loaded.task.activation), loaded.data_options, loaded.task)


class PerImageStatistics(torch.nn.Module):
    """The network with every batch-norm layer normalising by the statistics of what it is given."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config
        self.size_rule = model.size_rule

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for layer in batch_norms(self.model):
            layer.train()
        with torch.no_grad():
            return self.model(images)


def per_image(loaded: LoadedPredictor) -> LoadedPredictor:
    model = copy.deepcopy(loaded.predictor.model).float().to(memory_format=torch.contiguous_format)
    for layer in batch_norms(model):
        layer.track_running_stats = False  # train mode, and the running statistics left alone
    return LoadedPredictor(TorchPredictor(PerImageStatistics(model), None, loaded.task.activation),
                           loaded.data_options, loaded.task)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    root = build(args.set, args.cache)
    loaded = load_predictor(args.run / "best.pt", precision="fp32")
    if not batch_norms(loaded.predictor.model):
        raise SystemExit(f"{args.run / 'best.pt'} has no batch normalisation")
    kept = json.loads((args.run / "result.json").read_text())["kept_step"]
    print(f"{args.set}, {args.run} ({stored_config(args.run).resolved_schedule} schedule, "
          f"{torch.get_num_threads()} threads now): test Dice of best.pt (step {kept})")
    print("| statistics | test Dice |\n|---|---|")
    print(f"| running (as unetkit predicts) | {test_dice_of(loaded, root):.4f} |")
    print(f"| recomputed on the whole images it trained on | {test_dice_of(recomputed(loaded, args.run, root / 'train'), root):.4f} |")
    print(f"| per image | {test_dice_of(per_image(loaded), root):.4f} |")


if __name__ == "__main__":
    main()
