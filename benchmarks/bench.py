"""Speed and memory of unetkit against its peers, measured in one run, alternating contenders.

    python benchmarks/bench.py              # the full table (about 10 minutes on 2 cores)
    python benchmarks/bench.py --quick      # a smoke test on tiny sizes (CI runs it)

Contenders (same input, same task):
- ``unetkit-fast``: the reference network in unetkit's default path (bf16 autocast where
  the CPU supports it, channels_last);
- ``unetkit-fp32``: the same network in plain fp32 eager, contiguous;
- ``monai-basicunet``: MONAI ``BasicUNet(spatial_dims=2, features=(32, 64, 128, 256, 512, 32))``
  in fp32 (``pip install --no-deps monai``; skipped if absent);
- ``milesial-unet``: the milesial/Pytorch-UNet architecture as published (64 to 1024 filters,
  batch norm, transposed convolutions), written here from its published structure, fp32.

Measures: training step images/s (forward + backward + Adam step) at batch 8 of 96x96 and
batch 4 of 256x256; inference images/s at 512x512; tiled inference MPix/s and peak RSS on a
large image (each in its own process, so that RSS is its own), unetkit's ``predict_tiled``
against MONAI's ``sliding_window_inference`` with the same model, tile and overlap.
Medians over repeats after a warm-up. Prints a Markdown table and writes JSON if asked.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch
from torch import nn

from unetkit import UNet
from unetkit.precision import autocast_context, resolve_precision


class MilesialDoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


class MilesialUNet(nn.Module):
    """milesial/Pytorch-UNet's UNet(n_channels=1, n_classes=1, bilinear=False), from its published structure."""

    def __init__(self) -> None:
        super().__init__()
        widths = [64, 128, 256, 512, 1024]
        self.inc = MilesialDoubleConv(1, 64)
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), MilesialDoubleConv(a, b)) for a, b in zip(widths, widths[1:]))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, b // 2, 2, stride=2) for b in reversed(widths[1:]))
        self.up_convs = nn.ModuleList(MilesialDoubleConv(b, b // 2) for b in reversed(widths[1:]))
        self.outc = nn.Conv2d(64, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
        return self.outc(x)


def make_contender(name: str) -> tuple[nn.Module, torch.dtype | None, torch.memory_format]:
    cpu = torch.device("cpu")
    if name == "unetkit-fast":
        return UNet(), resolve_precision("auto", cpu), torch.channels_last
    if name == "unetkit-fp32":
        return UNet(), None, torch.contiguous_format
    if name == "monai-basicunet":
        from monai.networks.nets import BasicUNet

        return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(32, 64, 128, 256, 512, 32)), None, torch.contiguous_format
    if name == "milesial-unet":
        return MilesialUNet(), None, torch.contiguous_format
    raise ValueError(name)


def available_contenders() -> list[str]:
    names = ["unetkit-fast", "unetkit-fp32", "milesial-unet"]
    try:
        import monai  # noqa: F401

        names.insert(2, "monai-basicunet")
    except ImportError:
        pass
    return names


def train_step_fn(name: str, batch: int, side: int) -> Callable[[], None]:
    model, dtype, memory_format = make_contender(name)
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, side, side).contiguous(memory_format=memory_format)
    y = (torch.rand(batch, 1, side, side) > 0.5).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(torch.device("cpu"), dtype):
            logits = model(x)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        optimizer.step()

    return step


def inference_fn(name: str, batch: int, side: int) -> Callable[[], None]:
    if name == "unetkit-onnxruntime":
        from unetkit.export import onnx_bytes
        from unetkit.inference.onnx_backend import OnnxRuntimePredictor
        from unetkit.tasks import SemanticTask

        model = UNet().eval()
        runtime = OnnxRuntimePredictor(onnx_bytes(model), model.config, None, SemanticTask()).logits
        image = torch.rand(batch, 1, side, side)
        return lambda: runtime(image)
    model, dtype, memory_format = make_contender(name)
    model = model.to(memory_format=memory_format).eval()
    x = torch.rand(batch, 1, side, side).contiguous(memory_format=memory_format)

    def infer() -> None:
        with torch.inference_mode(), autocast_context(torch.device("cpu"), dtype):
            model(x)

    return infer


def timed(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


TILING_ENGINES = ("unetkit", "monai")


def tiled_worker(engine: str, side: int, tile: int, overlap: float) -> dict[str, float]:
    """Run in a fresh process: tiled inference of one side x side image with the reference
    network in unetkit's fast path; only the tiling engine differs. MPix/s and peak RSS."""
    from unetkit.inference.predictor import TorchPredictor
    from unetkit.tiling import TileOptions, plan_tiles, predict_tiled

    model, dtype, memory_format = make_contender("unetkit-fast")
    model = model.to(memory_format=memory_format).eval()
    image = torch.rand(1, side, side)
    setup_start = time.perf_counter()  # the first call builds the kernels: reported apart
    with torch.inference_mode(), autocast_context(torch.device("cpu"), dtype):
        model(torch.rand(1, 1, tile, tile).contiguous(memory_format=memory_format))
    setup_seconds = time.perf_counter() - setup_start
    start = time.perf_counter()
    if engine == "unetkit":
        predict_tiled(TorchPredictor(model, dtype), image, TileOptions(tile_size=tile, overlap=overlap))
        geometry = plan_tiles(model, side, side, TileOptions(tile_size=tile, overlap=overlap))
        computed = len(geometry.row_starts) * len(geometry.col_starts) * tile * tile
    else:
        from monai.inferers import sliding_window_inference

        with torch.inference_mode(), autocast_context(torch.device("cpu"), dtype):
            sliding_window_inference(image[None], (tile, tile), 1, model, overlap=overlap, mode="gaussian")
        computed = float("nan")
    seconds = time.perf_counter() - start
    return {"mpix_per_s": side * side / 1e6 / seconds, "seconds": seconds, "setup_seconds": setup_seconds,
            "peak_rss_mib": peak_rss_mib(),
            "overlap_factor": computed / (side * side)}


def run_tiled(engine: str, side: int, tile: int, overlap: float) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--tiled-worker", engine, str(side), str(tile), str(overlap)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def forward_flops(side: int) -> float:
    """FLOPs (2 x multiply-adds) of the reference network's forward pass on one side x side image."""
    model = UNet()
    total = 0

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += out.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.ConvTranspose2d):
            total += args[0].numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(torch.zeros(1, 1, side, side))
    for handle in handles:
        handle.remove()
    return 2.0 * total


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
    seconds = timed(lambda: torch.mm(a, b), repeats)
    return 2 * size**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--tiled-worker", nargs=4, metavar=("ENGINE", "SIDE", "TILE", "OVERLAP"))
    parser.add_argument("--tiled-sides", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--only-tiled", action="store_true", help="skip the throughput table")
    args = parser.parse_args()
    if args.tiled_worker:
        name, side, tile, overlap = args.tiled_worker
        print(json.dumps(tiled_worker(name, int(side), int(tile), float(overlap))))
        return

    quick = args.quick
    repeats = 1 if quick else args.repeats
    train_settings = [(2, 32)] if quick else [(8, 96), (4, 256)]
    infer_side = 64 if quick else 512
    tiled_sides = [256] if quick else args.tiled_sides
    tile, overlap = (64, 0.25) if quick else (512, 0.25)
    contenders = available_contenders()
    if args.only_tiled:  # still measure the single-tile rate that the tiled rate is compared with
        train_settings = []
    results: dict[str, dict[str, float]] = {name: {} for name in contenders}

    # Build every step function first, then alternate between contenders round by round.
    tasks: list[tuple[str, str, Callable[[], None], int]] = []
    for batch, side in train_settings:
        for name in contenders:
            tasks.append((name, f"train b{batch} {side}px img/s", train_step_fn(name, batch, side), batch))
    inference_contenders = list(contenders)
    try:
        import onnxruntime  # noqa: F401

        inference_contenders.append("unetkit-onnxruntime")
        results["unetkit-onnxruntime"] = {}
    except ImportError:
        pass
    for name in inference_contenders:
        if not args.only_tiled or name == "unetkit-fast":
            tasks.append((name, f"infer {infer_side}px img/s", inference_fn(name, 1, infer_side), 1))
    samples: dict[tuple[str, str], list[float]] = {}
    for fn_name in {t[1] for t in tasks}:
        for name, label, fn, _ in tasks:
            if label == fn_name:
                fn()  # warm-up
    for _ in range(repeats):
        for name, label, fn, images in tasks:
            start = time.perf_counter()
            fn()
            samples.setdefault((name, label), []).append(images / (time.perf_counter() - start))
    for (name, label), values in samples.items():
        results[name][label] = statistics.median(values)
    tiling: dict[str, dict[str, float]] = {}
    for side in tiled_sides:
        for engine in TILING_ENGINES:
            if engine == "monai" and "monai-basicunet" not in contenders:
                continue
            tiling[f"{engine} {side}px"] = run_tiled(engine, side, tile, overlap)
    single_tile = infer_rate = results["unetkit-fast"][f"infer {infer_side}px img/s"] * infer_side**2 / 1e6
    for key, values in tiling.items():
        values["share_of_single_tile_rate"] = values["mpix_per_s"] * values["overlap_factor"] / single_tile

    header = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "autocast (unetkit-fast)": str(resolve_precision("auto", torch.device("cpu"))),
        "forward GFLOP per 256x256 image": forward_flops(256) / 1e9,
        "matmul peak fp32 GFLOP/s": matmul_peak(torch.float32, 512 if quick else 2048),
        "matmul peak bf16 GFLOP/s": matmul_peak(torch.bfloat16, 512 if quick else 2048),
    }
    labels = sorted({label for values in results.values() for label in values})
    print("\n".join(f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in header.items()))
    print()
    columns = list(results)
    print("| measure | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label in labels:
        print(f"| {label} | " + " | ".join(f"{results[n].get(label, float('nan')):.3g}" for n in columns) + " |")
    print()
    print(f"Tiled inference, reference network in unetkit's fast path, tile {tile}, overlap {overlap}, "
          f"single-tile rate {infer_rate:.3g} MPix/s:")
    print("| engine, image | MPix/s | seconds (+ first-call setup) | peak RSS MiB | tiles' pixels / image pixels "
          "| share of single-tile rate |")
    print("|---|---|---|---|---|---|")
    for key, values in tiling.items():
        print(f"| {key} | {values['mpix_per_s']:.3g} | {values['seconds']:.3g} (+{values['setup_seconds']:.2g}) "
              f"| {values['peak_rss_mib']:.0f} "
              f"| {values['overlap_factor']:.3g} | {values['share_of_single_tile_rate']:.0%} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"header": header, "results": results, "tiling": tiling}, handle, indent=2)


if __name__ == "__main__":
    main()
