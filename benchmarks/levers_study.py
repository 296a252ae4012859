"""What else could bring the 3-minute run to the 40-epoch Dice on every set (issue 16).

    python benchmarks/levers_study.py --sets cells3d --seeds 1 --set lr=0.002
    python benchmarks/levers_study.py --sets hela cho bbbc007 cells3d --seeds 0 1 --set batch_norm=True --cross
    python benchmarks/levers_study.py --sets bbbc007 cells3d --seeds 0 1 --group-norm
    python benchmarks/levers_study.py --sets cells3d hela --seeds 1 0 --scale-augment --cross
    python benchmarks/levers_study.py --intensities cells3d    # why cells3d's test halves look brighter
    python benchmarks/levers_study.py --percentiles            # would another upper percentile do better?
    python benchmarks/levers_study.py --sets bacteria bbbc007 cells3d --set max_time_s=None --jitter-high 99.8 99.9 99.95
    python benchmarks/levers_study.py --jitter-lows --sets hela cho cells3d bbbc007 bacteria
    python benchmarks/levers_study.py --score /tmp/tmpXXXX/hela   # a kept run on other microscopes

Each run is ``unetkit train`` with its defaults and a 3-minute budget (``--max-time``), on one
set of ``benchmarks/public_data.py`` and one seed, with the options of ``--set`` changed
(any :class:`unetkit.TrainConfig` field, as ``name=value``). It prints the wall time, how the
run ended, and the test Dice of ``best.pt`` beside the reference network's 40-epoch run
(``benchmarks/results_length/<set>.json``).

Two what-ifs that are not unetkit options are swapped in for the study only:

- ``--group-norm``: ``batch_norm=True`` builds group normalisation (8 groups) instead of
  batch normalisation;
- ``--scale-augment``: half the training patches are multiplied by a factor drawn
  log-uniformly from [1/1.5, 1.5] before the default intensity augmentation (the spread of
  a percentile-normalised image's scale when its brightest objects differ).

The upper percentile of the normalisation is a unetkit option: ``--set upper_percentile=99``;
so is the normalisation jitter's share of patches (``--set normalization_jitter=0``: off). Which
percentiles the jitter draws from is not: ``--jitter-low`` and ``--jitter-high`` swap in other
choices from ``unetkit.data.jitter.LEVELS`` for the study (by default the low percentile is one
of 0.1 to 5 and the upper bound stays the normalisation's own). ``--set max_time_s=None`` runs
the default stopping rule instead of the 3-minute budget: its test Dice does not depend on the
machine's load, so such runs may share the machine.

``--cross`` also scores every model trained on ``hela`` (the embedded sample's frames) on
nuclei from other microscopes that no training sees (``training_study.score``: the sample's
held-out frames, 5 CHO frames, 6 cells3d slices).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from length_study import config_for, test_dice
from public_data import CACHE, build
from training_study import score

from unetkit import train


def parse_change(text: str) -> tuple[str, object]:
    """``name=value`` with the value as a Python literal where it is one (``True``, ``0.002``)."""
    name, _, value = text.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def swap_in_group_norm() -> None:
    """Make unetkit's network build GroupNorm(8) where it would build BatchNorm2d."""
    import unetkit.model

    class TorchNNWithGroupNorm:
        def __getattr__(self, name: str):
            return getattr(torch.nn, name)

        @staticmethod
        def BatchNorm2d(channels: int) -> torch.nn.Module:  # noqa: N802 (torch's name)
            return torch.nn.GroupNorm(8, channels)

    unetkit.model.nn = TorchNNWithGroupNorm()


def swap_in_scale_augment(probability: float = 0.5, largest: float = 1.5) -> None:
    """Scale half the training patches by a log-uniform factor in [1/largest, largest] first."""
    import unetkit.data.sampling

    default = unetkit.data.sampling.augment_intensity

    def scaled_then_default(patch, rng, options):
        if rng.random() < probability:
            patch = patch * math.exp(rng.uniform(-math.log(largest), math.log(largest)))
        return default(patch, rng, options)

    unetkit.data.sampling.augment_intensity = scaled_then_default


def swap_in_jitter_levels(low: list[float] | None, high: list[float] | None) -> None:
    """The normalisation jitter with fewer percentiles to draw from (a subset of the table's)."""
    from unetkit.data import jitter

    for levels in (low or [], high or []):
        missing = set(levels) - set(jitter.LEVELS)
        if missing:
            raise SystemExit(f"jitter levels {sorted(missing)} are not in jitter.LEVELS {jitter.LEVELS}")
    jitter.LOW_LEVELS = tuple(low or jitter.LOW_LEVELS)
    jitter.HIGH_LEVELS = tuple(high or jitter.HIGH_LEVELS)


def read_frames(root: Path, splits: tuple[str, ...] = ("train", "test")):
    """Each frame of a built set: ``(split, path, image as float32, foreground mask)``."""
    import tifffile

    for split in splits:
        for path in sorted((root / split / "images").iterdir()):
            image = tifffile.imread(path).astype(np.float32)
            yield split, path, image, tifffile.imread(root / split / "masks" / path.name) > 0


def print_jitter_lows(set_names: list[str], cache: Path) -> None:
    """How far the jitter's low percentiles lie from 0 after the default normalisation, over each
    set's training frames: near 0, the jitter leaves the set's patches nearly as they were."""
    from unetkit.data.jitter import LOW_LEVELS, quantile_table
    from unetkit.data.normalize import Normalization

    print(f"| set | training frames | percentiles {', '.join(f'{level:g}' for level in LOW_LEVELS)} "
          "after normalisation: lowest | highest |")
    print("|---|---|---|---|")
    for set_name in set_names:
        lows = []
        for _, _, image, _ in read_frames(build(set_name, cache), ("train",)):
            image = image if image.ndim == 2 else image[..., 0]
            table = quantile_table(Normalization().apply(image[None]).reshape(1, -1))[0]
            lows.append(table[:len(LOW_LEVELS)])
        print(f"| {set_name} | {len(lows)} | {np.min(lows):.3f} | {np.max(lows):.3f} |")


def print_intensities(set_name: str, cache: Path) -> None:
    """Per image of a set: the values that unetkit's default normalisation maps to 0 and 1, the
    raw mean of foreground and background, and the foreground's mean as the network sees it."""
    from unetkit.data.normalize import Normalization

    root = build(set_name, cache)
    print("| split | image | 1st percentile | 99.8th percentile | foreground mean | background mean | "
          "foreground mean, normalised |")
    print("|---|---|---|---|---|---|---|")
    for split, path, image, foreground in read_frames(root):
        image, foreground = image[None], foreground[None]  # (1, H, W), as unetkit reads a grey image
        scaling = Normalization().fitted(image)
        low, high = scaling.offset[0], scaling.offset[0] + scaling.span[0]
        print(f"| {split} | {path.stem} | {low:.0f} | {high:.0f} | {image[foreground].mean():.0f} | "
              f"{image[~foreground].mean():.0f} | {scaling.apply(image)[foreground].mean():.3f} |")


UPPER_PERCENTILES = (99.8, 99.5, 99.0, 98.0)
DENSITY_BINS = ((0.002, 0.02), (0.02, 0.08), (0.08, 0.2), (0.2, 1.0))


def contrast(image: np.ndarray, foreground: np.ndarray, upper: float) -> float:
    """Mean foreground minus mean background after unetkit's percentile normalisation with
    ``upper`` as its upper percentile: how bright the objects look to the network."""
    from unetkit.data.normalize import Normalization

    normalised = Normalization("percentile", 1.0, upper).apply(image[None])[0]
    return float(normalised[foreground].mean() - normalised[~foreground].mean())


def print_percentile_choice(set_names: list[str], cache: Path, crops: int = 300, seed: int = 0) -> None:
    """Two tables on the choice of the upper percentile (the lower stays 1):

    - whole frames of each set: the objects' contrast on training and test frames, the
      largest over the smallest contrast of a set's frames (1.0: every frame alike), and the
      frames' share of foreground pixels;
    - crops of up to 128 px drawn at random from every frame, each normalised on its own as
      an image of that size would be, binned by their share of foreground pixels: the median
      contrast per bin (a stand-in for sparse and crowded images of the same objects).
    """
    rng = np.random.default_rng(seed)
    by_density = {bin_: {upper: [] for upper in UPPER_PERCENTILES} for bin_ in DENSITY_BINS}
    print("| set | upper percentile | contrast, training frames | test frames | test / training | "
          "largest / smallest frame | foreground share of the frames |")
    print("|---|---|---|---|---|---|---|")
    for set_name in set_names:
        root = build(set_name, cache)
        frames = [(split, image, foreground) for split, _, image, foreground in read_frames(root)]
        for upper in UPPER_PERCENTILES:
            values = {split: [contrast(image, foreground, upper) for s, image, foreground in frames if s == split]
                      for split in ("train", "test")}
            every = values["train"] + values["test"]
            train_mean, test_mean = np.mean(values["train"]), np.mean(values["test"])
            shares = [foreground.mean() for _, _, foreground in frames]
            print(f"| {set_name} | {upper:g} | {train_mean:.3f} | {test_mean:.3f} | {test_mean / train_mean:.2f} | "
                  f"{max(every) / min(every):.2f} | {min(shares):.0%} to {max(shares):.0%} |")
        for _, image, foreground in frames:
            side = min(128, *image.shape)
            for _ in range(crops):
                y, x = (int(rng.integers(0, extent - side + 1)) for extent in image.shape)
                crop, crop_foreground = image[y:y + side, x:x + side], foreground[y:y + side, x:x + side]
                share = crop_foreground.mean()
                for low, high in DENSITY_BINS:
                    if low <= share < high:
                        for upper in UPPER_PERCENTILES:
                            by_density[(low, high)][upper].append(contrast(crop, crop_foreground, upper))
    print(f"\nCrops of up to 128 px ({crops} per frame, every set), median contrast by share of foreground:")
    print("| foreground share | crops | " + " | ".join(f"upper {upper:g}" for upper in UPPER_PERCENTILES) + " |")
    print("|---|---|" + "---|" * len(UPPER_PERCENTILES))
    for (low, high), values in by_density.items():
        count = len(values[UPPER_PERCENTILES[0]])
        medians = " | ".join(f"{np.median(values[upper]):.2f}" if count else "-" for upper in UPPER_PERCENTILES)
        print(f"| {low:.1%} to {high:.0%} | {count} | {medians} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["hela", "cho", "cells3d", "bbbc007"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="NAME=VALUE",
                        help="a TrainConfig option changed for every run (repeatable)")
    parser.add_argument("--max-time", type=float, default=180.0, help="each run's training budget in seconds")
    parser.add_argument("--group-norm", action="store_true", help="batch_norm=True builds GroupNorm(8) instead")
    parser.add_argument("--scale-augment", action="store_true", help="scale half the patches by 1/1.5 to 1.5 first")
    parser.add_argument("--jitter-low", type=float, nargs="+", metavar="PERCENTILE",
                        help="the normalisation jitter draws its low percentile from these only (of jitter.LEVELS)")
    parser.add_argument("--jitter-high", type=float, nargs="+", metavar="PERCENTILE",
                        help="the normalisation jitter draws its high percentile from these only (of jitter.LEVELS)")
    parser.add_argument("--cross", action="store_true", help="score hela models on other microscopes too")
    parser.add_argument("--intensities", metavar="SET", help="only print the intensity statistics of SET's images")
    parser.add_argument("--percentiles", action="store_true",
                        help="only print how the objects' contrast depends on the upper percentile, on --sets")
    parser.add_argument("--jitter-lows", action="store_true",
                        help="only print where the jitter's low percentiles lie after normalisation, on --sets")
    parser.add_argument("--score", nargs="+", type=Path, metavar="RUN_DIR",
                        help="only score these runs' best.pt on other microscopes, as --cross does")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--logs", type=Path, default=Path(__file__).with_name("results_length"))
    args = parser.parse_args()
    if args.intensities:
        print_intensities(args.intensities, args.cache)
        return
    if args.percentiles:
        print_percentile_choice(args.sets, args.cache)
        return
    if args.jitter_lows:
        print_jitter_lows(args.sets, args.cache)
        return
    if args.score:
        for run in args.score:
            scores = score(run / "best.pt", args.cache)
            print(f"{run}: " + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()), flush=True)
        return
    changes = dict(parse_change(text) for text in args.changes)
    if args.group_norm:
        swap_in_group_norm()
        changes["batch_norm"] = True
    if args.scale_augment:
        swap_in_scale_augment()
    if args.jitter_low or args.jitter_high:
        swap_in_jitter_levels(args.jitter_low, args.jitter_high)
    from unetkit.data import jitter

    resolved = config_for(Path("."), Path("-"), **{"max_time_s": args.max_time, **changes})  # as the runs resolve them
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; changes {changes}; foreground share "
          f"{resolved.foreground_fraction}; upper percentile {resolved.upper_percentile}; jitter share "
          f"{resolved.normalization_jitter}; stopping patience {resolved.early_stopping}; group norm "
          f"{args.group_norm}; scale augment {args.scale_augment}; max time {resolved.max_time_s} s; jitter levels "
          f"{jitter.LOW_LEVELS} / {jitter.HIGH_LEVELS}")
    print("| set | seed | wall s | steps | stopped | test Dice | 40 epochs | difference |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for set_name in args.sets:
            root = build(set_name, args.cache)
            out = Path(tempfile.mkdtemp()) / set_name
            start = time.perf_counter()
            options = {"seed": seed, "max_time_s": args.max_time, **changes}  # --set may override both
            config = config_for(root, out, **options)
            result = train(config, report=lambda text: None)
            wall = time.perf_counter() - start
            dice = test_dice(out / "best.pt", root)
            log = args.logs / f"{set_name}.json"
            reference = json.loads(log.read_text())["final_test_dice"] if log.exists() else None
            compared = f"{reference:.4f} | {dice - reference:+.4f}" if reference is not None else "- | -"
            print(f"| {set_name} | {seed} | {wall:.0f} | {result.global_step} | {result.stopped.value} | {dice:.4f} | "
                  f"{compared} |", flush=True)
            if args.cross and set_name == "hela":
                scores = score(out / "best.pt", args.cache)
                print("    other microscopes: " + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()),
                      flush=True)


if __name__ == "__main__":
    main()
