"""Seconds a training step of the reference network takes at base widths 32 (the reference), 24 and 16.

    python benchmarks/results_width16/step_time.py [THREADS]

A step: forward, Dice + BCE-like loss, backward and Adam on a batch of 4 patches of 128 px (today's default), bf16
autocast where the CPU has native bf16 (unetkit's ``--precision auto``), channels_last. Medians of 10 steps after 2
of warm-up, three rounds alternating the widths; prints each round's median and their median.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for training_study
from training_study import step_seconds as training_step_seconds  # noqa: E402


def step_seconds(width: int) -> float:
    """Median seconds of 10 steps after 2 of warm-up, bf16 where ``--precision auto`` picks it, channels_last."""
    return training_step_seconds("auto", True, base_width=width, steps=12)


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
