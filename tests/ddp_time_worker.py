"""Run by test_distributed: two gloo ranks train under --max-time while rank 1's clock runs
twice as fast, as if its steps took twice as long; both must stop at the same step."""

import json
import os
import sys
import time
import types

from unetkit import TrainConfig, train
from unetkit.training import loop


def main(rank: int, port: str, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    if rank == 1:
        loop.time = types.SimpleNamespace(perf_counter=lambda: 2 * time.perf_counter())
    config = TrainConfig(out=out, data=data, depth=2, base_width=4, epochs=400, steps_per_epoch=10, batch_size=2,
                         patch_size=32, val_tile_size=64, precision="fp32", progress=False, max_time_s=1.0,
                         device="cpu")
    result = train(config, report=lambda text: None)
    with open(f"{out}.rank{rank}.json", "w") as handle:
        json.dump({"stopped": result.stopped.value, "steps": result.global_step}, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
