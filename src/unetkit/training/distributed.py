"""PyTorch DDP under ``torchrun``: the process group comes from torchrun's environment.

Nothing here launches processes or averages gradients by hand: ``torchrun`` starts the
ranks, :class:`torch.nn.parallel.DistributedDataParallel` averages the gradients. This
module only reads the environment, picks the backend (nccl on CUDA, gloo on CPU) and
offers the few collectives the training loop needs.

>>> context = DistributedContext()        # a plain single process
>>> context.is_main, context.world_size, context.all_sum([1.0, 2.0])
(True, 1, [1.0, 2.0])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from ..precision import resolve_device

DEFAULT_TIMEOUT_S = 300.0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class DistributedContext:
    """Rank, world size and device of this process; a no-op for a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    active: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (stop together)."""
        return self.all_sum([float(flag)])[0] > 0 if self.active else flag

    def broadcast_from_main(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` on every rank with rank 0's, in place (a no-op for one process)."""
        if not self.active:
            return
        for tensor in tensors:
            dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
            self.active = False


def init_distributed(device_name: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> DistributedContext:
    """Join torchrun's process group if there is one; otherwise a single-process context.

    ``timeout_s`` bounds every collective: a rank that dies makes the others fail after
    at most that long instead of hanging forever (torchrun then restarts or stops them).
    """
    device = resolve_device(device_name)
    if not launched_by_torchrun():
        return DistributedContext(device=device)
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout = timedelta(seconds=timeout_s)
    # After a torchrun restart the store may still hold the previous attempt's addresses;
    # a prefix per attempt keeps the restarted ranks from dialling processes that are gone.
    store, _, _ = next(dist.rendezvous("env://", timeout=timeout))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"unetkit/attempt_{attempt}", store)
    dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    return DistributedContext(rank, world_size, local_rank, device, active=True)
