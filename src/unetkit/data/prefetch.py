"""The training batches, in a fixed order of ``(epoch, step)`` positions: prepared in a background thread while the
model trains on the previous one (:class:`BatchPrefetcher`), or made when asked for, in the training thread
(:class:`InlineBatches`), where no core is spare for the thread (:func:`batch_feed`).

Each batch is a pure function of its position (:class:`~unetkit.data.sampling.PatchSampler`), so
either way the batches are the same, and only the time differs. An error in the thread is raised
in the caller.

>>> import torch
>>> class Counting:
...     def batch(self, epoch, step, indices):
...         return torch.tensor([epoch, step]), torch.tensor(list(indices))
>>> prefetcher = BatchPrefetcher(Counting(), [(0, 0), (0, 1)], range(2))
>>> [prefetcher.next()[0].tolist() for _ in range(2)]
[[0, 0], [0, 1]]
>>> prefetcher.close()
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

import torch


class BatchSource(Protocol):
    def batch(self, epoch: int, step: int, indices: range) -> tuple[torch.Tensor, ...]: ...


class BatchPrefetcher:
    """Prepares the next ``depth`` batches in a background thread."""

    def __init__(self, source: BatchSource, positions: list[tuple[int, int]], indices: range, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source, positions, indices), daemon=True)
        self._thread.start()

    def _run(self, source: BatchSource, positions: list[tuple[int, int]], indices: range) -> None:
        try:
            for epoch, step in positions:
                batch = source.batch(epoch, step, indices)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:  # hand the error to the training thread
            self._queue.put(exc)

    def next(self) -> tuple[torch.Tensor, ...]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class InlineBatches:
    """The batches of ``positions``, each made when :meth:`next` asks for it, in the caller's thread.

    >>> class Counting:
    ...     def batch(self, epoch, step, indices):
    ...         return torch.tensor([epoch, step]), torch.tensor(list(indices))
    >>> batches = InlineBatches(Counting(), [(0, 0), (0, 1)], range(2))
    >>> [batches.next()[0].tolist() for _ in range(2)]
    [[0, 0], [0, 1]]
    """

    def __init__(self, source: BatchSource, positions: list[tuple[int, int]], indices: range):
        self._source, self._positions, self._indices = source, iter(positions), indices

    def next(self) -> tuple[torch.Tensor, ...]:
        epoch, step = next(self._positions)
        return self._source.batch(epoch, step, self._indices)

    def close(self) -> None:
        """Nothing runs beside the caller."""


def batch_feed(source: BatchSource, positions: list[tuple[int, int]], indices: range,
               background: bool) -> BatchPrefetcher | InlineBatches:
    """A :class:`BatchPrefetcher` where ``background`` (a core is spare for it: :func:`unetkit.cores.spare_core`),
    else :class:`InlineBatches`: on 2 cores that both run the training steps, a thread beside them made an epoch
    take 1.10 times as long (the reference network; 1.24 at a quarter of its width: BENCHMARKS.md, "Batches made
    beside the training steps")."""
    return BatchPrefetcher(source, positions, indices) if background else InlineBatches(source, positions, indices)
