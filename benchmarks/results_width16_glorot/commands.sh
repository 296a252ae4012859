#!/usr/bin/env bash
# Issue 16, twenty-fourth session (2026-12-07): the quarter-width network (--base-width 16, 3.2x as many steps in the
# 3 minutes) started as the Keras reference starts (--weight-init glorot), which found the bacteria's faint colony
# cells at seed 2 with the reference width. Every 200-step epoch's model scored on the test images; one torch thread
# each, two queues side by side. Machine: 2-core AMD EPYC Zen 4 (avx512_bf16, no AMX), torch 2.13.0+cpu, bf16.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { OMP_NUM_THREADS=1 ../.venv/bin/python selection_study.py --set "$1" --seed "$2" --epochs 12 \
          --weight-init glorot --change base_width=16 --out "results_width16_glorot/$1"; }
(run bacteria 2; run bacteria 1; run hela 0) > results_width16_glorot/queue_a.log 2>&1 &
(run bacteria 0; run bbbc007 0; run cells3d 0) > results_width16_glorot/queue_b.log 2>&1 &
wait
# then (started once the queues above had ended): CHO, and BBBC007 at a second seed
run() { OMP_NUM_THREADS=1 ../.venv/bin/python selection_study.py --set "$1" --seed "$2" --epochs 12 \
          --weight-init glorot --change base_width=16 --out "results_width16_glorot/$1"; }
(run cho 0) > results_width16_glorot/queue_c.log 2>&1 &
(run bbbc007 1) > results_width16_glorot/queue_d.log 2>&1 &
wait
# the table: what best.pt keeps after 1,000 / 1,400 / 2,000 / 2,400 steps, and the rule (patience 5)
../.venv/bin/python results_width16/width16_replay.py --curves results_width16_glorot --checkpoints 5 7 10 12 \
  > results_width16_glorot/replay.md
