"""Training steps with the batches made in a thread beside them, against made in the training thread.

    OMP_NUM_THREADS=2 python benchmarks/results_batch_thread/batch_thread_ab.py SET WIDTH ROUNDS [--task instances]

One epoch of the default run (pixels: 200 steps of 4 x 128 px; objects: 50 steps of 4 x 256 px) on
``~/.cache/unetkit-study/sets/SET/train`` (benchmarks/public_data.py), the two ways alternated ROUNDS times: "thread"
(unetkit.data.prefetch.BatchPrefetcher) and "inline" (InlineBatches), chosen by patching the training loop's
``spare_core``. Prints each epoch's training seconds (log.csv) and share waiting for or making batches, then the
medians and the median of the rounds' ratios. The loss is printed too: the batches are the same either way.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import torch

import unetkit.training.loop as loop
from unetkit import TrainConfig, train

SETS = Path.home() / ".cache" / "unetkit-study" / "sets"


def epoch_seconds(data: Path, width: int, task: str, background: bool) -> dict[str, str]:
    loop.spare_core = lambda device_type: background
    out = Path(tempfile.mkdtemp()) / "run"
    options = {"task": "instances"} if task == "instances" else {"mask_mode": "instances"}
    train(TrainConfig(out=str(out), data=str(data), base_width=width, epochs=1, progress=False, **options),
          report=lambda text: None)
    with open(out / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("set")
    parser.add_argument("width", type=int)
    parser.add_argument("rounds", type=int)
    parser.add_argument("--task", choices=("semantic", "instances"), default="semantic")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"thread": [], "inline": []}
    print(f"{args.set}, width {args.width}, {args.task}; {torch.get_num_threads()} torch threads")
    for _ in range(args.rounds):
        for name in seconds:
            row = epoch_seconds(SETS / args.set / "train", args.width, args.task, background=name == "thread")
            seconds[name].append(float(row["seconds"]))
            print(f"{name}: {row['seconds']} s, batches {row['data_wait']} of the step time, loss {row['loss']}",
                  flush=True)
    ratios = [thread / inline for thread, inline in zip(seconds["thread"], seconds["inline"])]
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.1f} s ({' '.join(f'{v:.1f}' for v in values)})")
    print(f"thread / inline, median of the rounds: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
