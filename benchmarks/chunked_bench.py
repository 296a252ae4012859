"""Beyond RAM: the whole ``unetkit predict`` command on huge images, training on a dataset
larger than memory, and predicting thousands of files. Each part generates its synthetic
data in ``--work`` (default: a temporary folder) and removes it afterwards.

    python benchmarks/chunked_bench.py big --side 32768      # ~40 min on 2 cores (--base-width 8: a narrower net)
    python benchmarks/chunked_bench.py train --images 1600   # ~15 min, 13 GiB of disk for a while
    python benchmarks/chunked_bench.py files --count 2000    # ~10 min

``big``: a synthetic ``side x side`` uint16 image (blobs on a noisy background) as a tiled
BigTIFF and as OME-Zarr; ``unetkit predict`` (labels and overlay, as by default) on each, in a
fresh process whose peak resident memory (VmHWM) is reported; the same command on a 4096 px
crop against the in-memory path (labels must be identical); and the in-memory tiler's rate on
an 8192 px image, to compare the whole command's throughput per pixel with it.

``train``: ``--images`` images of 2048 x 2048 uint16 with masks (1,600: 13 GiB on disk, 27 GiB
as float32); training reads them from the files (the dataset is over the memory budget);
against the in-memory path on 40 such images: images per second, the share of the step time
spent waiting for data, peak memory.

``files``: ``--count`` 256 x 256 PNGs: ``unetkit predict`` (reading ahead and writing behind
in helper threads where a core is idle, in turn where not) against a plain loop that reads,
predicts and writes one file after the other, and with the helper threads forced on and off;
then a batch killed halfway and finished with ``--skip-existing``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

HERE = Path(__file__).resolve()


def peak_rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(argv: list[str]) -> None:
    """Run one unetkit command in this fresh process; print its seconds and peak memory.

    A first argument ``--overlap=on`` or ``--overlap=off`` forces predict's choice of helper
    threads (:func:`unetkit.predict.spare_core`), to measure both on one machine."""
    from unetkit import predict
    from unetkit.cli import main

    if argv and argv[0].startswith("--overlap="):
        forced = argv.pop(0) == "--overlap=on"
        predict.spare_core = lambda loaded: forced
    start = time.perf_counter()
    code = main(argv)
    print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}))


def run_worker(argv: list[str]) -> dict:
    finished = subprocess.run([sys.executable, str(HERE), "--worker", json.dumps(argv)],
                              capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def blobs_template(side: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 image of bright blobs on a noisy background, and its mask."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:side, :side]
    mask = np.zeros((side, side), np.uint8)
    for _ in range(side * side // 4000):
        r, c, radius = rng.integers(0, side), rng.integers(0, side), rng.integers(6, 14)
        box = (slice(max(r - radius, 0), r + radius + 1), slice(max(c - radius, 0), c + radius + 1))
        mask[box][((rows[box] - r) ** 2 + (cols[box] - c) ** 2) <= radius**2] = 1
    image = (1000 + 3000 * mask.astype(np.float32) + rng.normal(0, 300, (side, side))).clip(0, 65535).astype(np.uint16)
    return image, mask


def checkpoint(folder: Path, base_width: int = 32) -> Path:
    """The reference network (or a narrower one), random weights, its bias set so that about half
    the pixels are foreground."""
    from unetkit import UNet, UNetConfig, make_checkpoint, save_checkpoint
    from unetkit.data.normalize import Normalization

    torch.manual_seed(0)
    model = UNet(UNetConfig(base_width=base_width)).eval()
    image, _ = blobs_template(512)
    with torch.no_grad():
        logits = model(torch.from_numpy(Normalization().apply(image[None].astype(np.float32)))[None])
        model.head.bias -= logits.median()
    path = folder / "model.pt"
    save_checkpoint(path, make_checkpoint(model))
    return path


def big(args: argparse.Namespace) -> None:
    from unetkit.data.writers import write_ome_zarr
    from unetkit.inference.predictor import TorchPredictor
    from unetkit.inference.loading import load_predictor
    from unetkit.tiling import TileOptions, predict_tiled

    work = args.work
    model = checkpoint(work, args.base_width)
    template, _ = blobs_template(2048)
    side = args.side
    path = work / "big.tif"
    tiles = (template[r % 1536 : r % 1536 + 512, c % 1536 : c % 1536 + 512]
             for r in range(0, side, 512) for c in range(0, side, 512))
    tifffile.imwrite(path, tiles, shape=(side, side), dtype=np.uint16, tile=(512, 512), bigtiff=True)
    print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB)", flush=True)
    if "ome-zarr" in args.formats:
        write_ome_zarr(work / "big.ome.zarr", _TiffRows(path), labels=False, min_side=4096)
    results = {}
    for name in [{"tif": "big.tif", "ome-zarr": "big.ome.zarr"}[kind] for kind in args.formats]:
        out = work / f"out-{name}"
        results[name] = run_worker(["predict", str(model), str(work / name), "--out", str(out)])
        results[name]["mpix_per_s"] = side * side / 1e6 / results[name]["seconds"]
        print(name, json.dumps(results[name]), sorted(p.name for p in out.iterdir()), flush=True)
        shutil.rmtree(out)
    crop = template[:2048, :2048]
    crop = np.tile(crop, (2, 2))
    tifffile.imwrite(work / "crop.tif", crop, tile=(512, 512))
    run_worker(["predict", str(model), str(work / "crop.tif"), "--out", str(work / "eager"), "--format", "tif"])
    run_worker(["predict", str(model), str(work / "crop.tif"), "--out", str(work / "large"), "--format", "tif",
                "--probabilities-on-disk"])
    same = np.array_equal(tifffile.imread(work / "eager" / "crop_labels.tif"), tifffile.imread(work / "large" / "crop_labels.tif"))
    loaded = load_predictor(model)
    image = loaded.data_options.normalization.apply(np.tile(template, (4, 4))[None].astype(np.float32))
    predictor = loaded.predictor
    assert isinstance(predictor, TorchPredictor)
    predict_tiled(predictor, image[:, :512, :512])  # the first call builds the kernels
    start = time.perf_counter()
    predict_tiled(predictor, image, TileOptions())
    in_memory = image.shape[-1] * image.shape[-2] / 1e6 / (time.perf_counter() - start)
    print(json.dumps({"results": results, "crop_labels_identical": same, "in_memory_tiler_mpix_per_s": in_memory,
                      "ratio": {k: v["mpix_per_s"] / in_memory for k, v in results.items()}}), flush=True)


class _TiffRows:
    """A tiled TIFF read band by band as a (H, W) array-like (for writing it as OME-Zarr)."""

    def __init__(self, path: Path):
        from unetkit.data.chunked import open_image

        self.reader = open_image(path)
        self.shape, self.dtype = (self.reader.height, self.reader.width), self.reader.dtype

    def __getitem__(self, key):
        rows = key[-2]
        return self.reader.read(rows.start, rows.stop, 0, self.reader.width)[..., 0]


def write_dataset(folder: Path, count: int, template: np.ndarray, mask: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(1)
    for index in range(count):
        shift = rng.integers(0, 2048, 2)
        tifffile.imwrite(folder / "images" / f"i{index:04d}.tif", np.roll(template, shift, (0, 1)))
        tifffile.imwrite(folder / "masks" / f"i{index:04d}.tif", np.roll(mask, shift, (0, 1)))


def train_part(args: argparse.Namespace) -> None:
    template, mask = blobs_template(2048)
    large, small = args.work / "large", args.work / "small"
    start = time.perf_counter()
    write_dataset(large, args.images, template, mask)
    print(f"wrote {args.images} images in {time.perf_counter() - start:.0f} s "
          f"({sum(p.stat().st_size for p in large.rglob('*.tif')) / 2**30:.1f} GiB)", flush=True)
    write_dataset(small, 40, template, mask)
    common = ["--epochs", "2", "--steps-per-epoch", str(args.steps // 2), "--no-progress", "--val-fraction", "0.05",
              "--augment", "flips"]
    results = {}
    for name, data in (("in memory (40 images)", small), (f"from the files ({args.images} images)", large)):
        out = args.work / f"run-{name[:4]}"
        result = run_worker(["train", str(data), "--out", str(out), *common])
        rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()]
        header, last = rows[0], rows[-1]
        steps_s = float(last[header.index("seconds")])
        result.update(images_per_s=args.steps * 4 / steps_s, data_wait=[float(r[header.index("data_wait")])
                                                                     for r in rows[1:]])
        results[name] = result
        print(name, json.dumps(result), flush=True)
    print(json.dumps(results))


def files_part(args: argparse.Namespace) -> None:
    from PIL import Image

    model = checkpoint(args.work, args.base_width)
    inputs = args.work / "inputs"
    inputs.mkdir()
    template, _ = blobs_template(2048)
    for index in range(args.count):
        r, c = (index * 97) % 1792, (index * 131) % 1792
        Image.fromarray((template[r : r + 256, c : c + 256] // 256).astype(np.uint8)).save(inputs / f"f{index:05d}.png")
    pipelined = run_worker(["predict", str(model), str(inputs), "--out", str(args.work / "pipelined")])
    plain_seconds = plain_loop(model, sorted(inputs.iterdir()), args.work / "plain")
    forced = {way: run_worker([f"--overlap={way}", "predict", str(model), str(inputs), "--out",
                               str(args.work / f"overlap-{way}")])["seconds"] for way in ("on", "off")}
    killed = subprocess.Popen([sys.executable, "-m", "unetkit", "predict", str(model), str(inputs), "--out",
                               str(args.work / "resumed")], stderr=subprocess.DEVNULL)
    time.sleep(pipelined["seconds"] / 2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    done_before = len(list((args.work / "resumed").glob("*_overlay.png")))
    resumed = run_worker(["predict", str(model), str(inputs), "--out", str(args.work / "resumed"), "--skip-existing"])
    complete = len(list((args.work / "resumed").glob("*_overlay.png")))
    print(json.dumps({
        "files": args.count, "unetkit predict files/s": args.count / pipelined["seconds"],
        "plain loop files/s": args.count / plain_seconds, "ratio": plain_seconds / pipelined["seconds"],
        "cores": len(os.sched_getaffinity(0)), "torch threads": torch.get_num_threads(),
        **{f"helper threads {way}: files/s": args.count / seconds for way, seconds in forced.items()},
        "killed after": done_before, "resume seconds": resumed["seconds"], "complete after resume": complete,
    }))


def plain_loop(model: Path, files: list[Path], out: Path) -> float:
    """What a user's loop would do: read, normalise, predict, write labels and overlay, in turn."""
    from unetkit.data.dataset import load_image_planes
    from unetkit.data.io import write_image
    from unetkit.inference.loading import load_predictor
    from unetkit.tiling import predict_tiled
    from unetkit.visualize import overlay

    out.mkdir()
    loaded = load_predictor(model)
    start = time.perf_counter()
    for path in files:
        _, _, image = load_image_planes(path, loaded.data_options.normalization)[0]
        labels = loaded.task.labels(predict_tiled(loaded.predictor, image))
        write_image(out / f"{path.stem}_labels.png", labels)
        write_image(out / f"{path.stem}_overlay.png", overlay(image, labels))
    return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["big", "train", "files"])
    parser.add_argument("--side", type=int, default=32768)
    parser.add_argument("--formats", nargs="+", choices=["tif", "ome-zarr"], default=["tif", "ome-zarr"],
                        help="big: the input formats to predict")
    parser.add_argument("--images", type=int, default=1600)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--base-width", type=int, default=32,
                        help="first level's filters of the network that big and files predict with (32: the reference)")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    made = args.work is None
    args.work = Path(tempfile.mkdtemp(prefix="unetkit-bench-")) if made else args.work
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpus {os.cpu_count()}; work in {args.work}")
    try:
        {"big": big, "train": train_part, "files": files_part}[args.part](args)
    finally:
        if made:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
