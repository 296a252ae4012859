#!/usr/bin/env bash
# Where a quarter-width run's time goes: py-spy (pip install py-spy; a sampling profiler, not a unetkit dependency)
# samples every Python thread 50 times a second through a 3-epoch (600-step) run on the bacteria, two threads; the
# raw stacks are then summed by the innermost unetkit frame (training loop line, model forward, batch thread, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=~/.cache/unetkit-study/sets
work=$(mktemp -d)
../.venv/bin/py-spy record -o $work/profile.txt -f raw --threads -r 50 -- ../.venv/bin/python -m unetkit train \
  $SETS/bacteria/train --out $work/run --instance-masks --base-width 16 --weight-init glorot --epochs 3 --seed 1 --no-progress
python3 - "$work/profile.txt" <<'PY'
import collections, sys
by_frame = collections.Counter()
for line in open(sys.argv[1]):
    stack, count = line.rsplit(" ", 1)
    frames = stack.split(";")
    ours = [frame for frame in frames if "unetkit" in frame]
    by_frame[(frames[0][:40], ours[-1] if ours else frames[-1][:80])] += int(count)
for (thread, frame), count in by_frame.most_common(25):
    print(count, thread, frame)
PY
