"""Run by test_distributed: two gloo ranks train a network with drop-out; each writes which channels its
drop-out layer zeroed at every step, so that the test can compare the ranks' masks."""

import json
import os
import sys

import torch

from unetkit import TrainConfig, train


def main(rank: int, port: str, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    masks: list[list[bool]] = []
    forward = torch.nn.Dropout2d.forward

    def recording(layer: torch.nn.Dropout2d, features: torch.Tensor) -> torch.Tensor:
        dropped = forward(layer, features)
        if layer.training:  # the first sample's channels that came out all zero (its input is not)
            masks.append([bool((channel == 0).all() and (given != 0).any())
                          for channel, given in zip(dropped[0], features[0])])
        return dropped

    torch.nn.Dropout2d.forward = recording
    config = TrainConfig(out=out, data=data, depth=2, base_width=8, epochs=1, steps_per_epoch=3, batch_size=1,
                         patch_size=32, val_tile_size=64, precision="fp32", progress=False, dropout=0.5,
                         device="cpu")
    train(config, report=lambda text: None)
    with open(f"{out}.rank{rank}.json", "w") as handle:
        json.dump(masks, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
