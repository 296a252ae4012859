"""Run by test_distributed: two gloo ranks, a batch-norm network under DDP, its weight average."""

import os
import sys

import torch
import torch.distributed as dist

from unetkit.training.averaging import follow, weight_average
from unetkit.training.distributed import DistributedContext


def main(rank: int, port: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    network = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = weight_average(model, 0.9)
    context = DistributedContext(rank=rank, world_size=2, active=True)
    data = torch.Generator().manual_seed(100 + rank)  # each rank its own shard: its own batch statistics
    for _ in range(6):
        optimizer.zero_grad()
        network(torch.randn(2, 1, 8, 8, generator=data) * (1 + rank)).mean().backward()
        optimizer.step()
        follow(average, model, context)
    torch.save(average.module.state_dict(), f"{out}/rank{rank}.pt")
    dist.barrier()  # a rank that tears its group down while the other still reads the last broadcast aborts it
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
