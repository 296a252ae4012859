"""Seconds a training step of the reference network takes at base widths 32 (the reference), 24 and 16.

    python benchmarks/results_width16/step_time.py [THREADS]

A step: forward, Dice + BCE-like loss, backward and Adam on a batch of 4 patches of 128 px (today's default), bf16
autocast where the CPU has native bf16 (unetkit's ``--precision auto``), channels_last. Medians of 10 steps after 2
of warm-up, three rounds alternating the widths; prints each round's median and their median.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from unetkit import UNet
from unetkit.model import preset
from unetkit.precision import autocast_context, resolve_precision


def step_seconds(width: int) -> float:
    torch.manual_seed(0)
    model = UNet(preset("keras-reference", base_width=width)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    images = torch.randn(4, 1, 128, 128).to(memory_format=torch.channels_last)
    masks = (torch.rand(4, 1, 128, 128) > 0.7).float()
    device = torch.device("cpu")
    dtype = resolve_precision("auto", device)
    times = []
    for index in range(12):
        start = time.perf_counter()
        with autocast_context(device, dtype):
            logits = model(images)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if index >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    rounds: dict[int, list[float]] = {32: [], 24: [], 16: []}
    for _ in range(3):
        for width in rounds:
            rounds[width].append(step_seconds(width))
    for width, seconds in rounds.items():
        print(f"base width {width}: {' '.join(f'{s:.3f}' for s in seconds)} s a step, median {statistics.median(seconds):.3f}")


if __name__ == "__main__":
    main()
