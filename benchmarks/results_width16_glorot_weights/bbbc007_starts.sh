#!/usr/bin/env bash
# BBBC007 at seed 0, the quarter-width network in 3 minutes from glorot's start and from PyTorch's (main, no diff),
# then each best.pt's Dice at thresholds 0.2 to 0.7 on the validation frame (A9_p5d, what the default split holds
# out) and the two test frames: threshold_scan.txt. Two threads, the machine otherwise quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=~/.cache/unetkit-study/sets
work=$(mktemp -d)
mkdir -p $work/val/images $work/val/masks
ln -s $SETS/bbbc007/train/images/A9_p5d.tif $work/val/images/ && ln -s $SETS/bbbc007/train/masks/A9_p5d.tif $work/val/masks/
../.venv/bin/unetkit train $SETS/bbbc007/train --out $work/w16g_s0 --instance-masks --base-width 16 --weight-init glorot \
  --max-time 3m --seed 0 --no-progress
../.venv/bin/unetkit train $SETS/bbbc007/train --out $work/w16p_s0 --instance-masks --base-width 16 \
  --max-time 3m --seed 0 --no-progress
for run in w16g_s0 w16p_s0; do
  ../.venv/bin/python results_width16_glorot_weights/threshold_scan.py $work/$run/best.pt $work/val $SETS/bbbc007/test
done
