"""Seconds a training step of the quarter-width network (--base-width 16) takes in each precision and memory layout.

    python benchmarks/results_width16_glorot_weights/precision_w16.py [THREADS] [ROUNDS]

Does ``--precision auto``'s choice (bf16 + channels_last where the CPU has native bf16), measured on the reference
width, hold for a network of 16 filters at the top? A step: forward, BCE loss, backward, fused Adam, batch of 4 x
128 px (``training_study.step_seconds``); medians of 10 steps after 2 of warm-up, rounds alternating the settings.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for training_study
from training_study import cpu_model, step_seconds  # noqa: E402

SETTINGS = {"fp32": ("fp32", False), "channels_last": ("fp32", True), "bf16": ("bf16", False),
            "bf16 + channels_last": ("bf16", True)}


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seconds: dict[str, list[float]] = {label: [] for label in SETTINGS}
    for _ in range(rounds):
        for label, (precision, channels_last) in SETTINGS.items():
            seconds[label].append(step_seconds(precision, channels_last, base_width=16, steps=12))
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; torch {torch.__version__}; base width 16")
    best = statistics.median(seconds["bf16 + channels_last"])
    for label, values in seconds.items():
        median = statistics.median(values)
        print(f"{label}: {' '.join(f'{s:.3f}' for s in values)} s a step, median {median:.3f}, "
              f"x bf16 + channels_last {median / best:.2f}")


if __name__ == "__main__":
    main()
