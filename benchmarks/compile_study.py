"""Would ``torch.compile`` make training faster on a CPU? Training steps of the reference
network, eager against compiled (inductor), each in its own process, same inputs.

    python benchmarks/compile_study.py            # ~3 minutes on 2 cores

Each process builds the reference network (``keras-reference``, one input channel), moves it
to channels_last, and times training steps as ``unetkit train`` takes them by default on a
CPU: Adam, Dice + BCE, bf16 autocast where the CPU has native bf16 (fp32 otherwise), batches
of 4 patches of 128 px. It prints the first step's seconds (compilation happens there), then
the median over ``--repeats`` blocks of ``--steps`` steps. The processes run one after the
other, in alternation (eager, compiled, eager, compiled, ...), so that a change of load hits
both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from unetkit.losses import build_loss
from unetkit.model import UNet, preset
from unetkit.precision import resolve_precision


def time_steps(compiled: bool, batch: int, patch: int, steps: int, repeats: int) -> dict[str, float]:
    """Seconds of the first step and the median seconds of a step after it."""
    torch.manual_seed(0)
    network = UNet.from_config(preset("keras-reference")).to(memory_format=torch.channels_last)
    step_network = torch.compile(network) if compiled else network
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss_function = build_loss("dice+bce", num_classes=1)
    dtype = resolve_precision("auto", torch.device("cpu"))
    images = torch.randn(batch, 1, patch, patch).to(memory_format=torch.channels_last)
    masks = (torch.rand(batch, patch, patch) > 0.7).long()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = step_network(images)
        loss_function(logits.float(), masks).backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        blocks.append((time.perf_counter() - start) / steps)
    return {"first_step_s": first, "step_s": statistics.median(blocks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="steps in a timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per process")
    parser.add_argument("--rounds", type=int, default=2, help="eager/compiled process pairs")
    parser.add_argument("--child", choices=["eager", "compiled"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_steps(args.child == "compiled", args.batch, args.patch, args.steps, args.repeats)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, autocast "
          f"{resolve_precision('auto', torch.device('cpu'))}, batch {args.batch} x {args.patch} px")
    results: dict[str, list[dict[str, float]]] = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for mode in results:
            command = [sys.executable, __file__, "--child", mode, "--batch", str(args.batch), "--patch",
                       str(args.patch), "--steps", str(args.steps), "--repeats", str(args.repeats)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(output.strip().splitlines()[-1]))
    print("| mode | first step s (each process) | s per step (median of each process) | steps/s |")
    print("|---|---|---|---|")
    for mode, runs in results.items():
        step_s = statistics.median(run["step_s"] for run in runs)
        first = ", ".join(f"{run['first_step_s']:.1f}" for run in runs)
        steps = ", ".join(f"{run['step_s']:.3f}" for run in runs)
        print(f"| {mode} | {first} | {steps} | {1 / step_s:.2f} |")
    eager = statistics.median(run["step_s"] for run in results["eager"])
    compiled = statistics.median(run["step_s"] for run in results["compiled"])
    print(f"compiled / eager steps per second: {eager / compiled:.2f}x")


if __name__ == "__main__":
    main()
