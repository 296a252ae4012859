#!/usr/bin/env bash
# The same 3-minute runs once training made its batches in the training thread on 2 cores (3e52f8b), with the
# mix as it is now offered, --weight-init glorot-pytorch-bias (the same draws as glorot_pytorch_bias.diff's glorot):
# two threads, the machine otherwise quiet, one run after the other; then the test Dice of best.pt.
set -uo pipefail
cd "$(dirname "$0")/.."
SETS=~/.cache/unetkit-study/sets
runs=("$@")  # "SET SEED" pairs; by default the eight of three_minutes_new_loop.txt (the second seeds: "hela 1" "cho 1" "cells3d 1")
[ ${#runs[@]} -gt 0 ] || runs=("bacteria 1" "bacteria 2" "bbbc007 0" "hela 0" "cho 0" "cells3d 0" "bacteria 0" "bbbc007 1")
for run in "${runs[@]}"; do
  set -- $run
  out=$(mktemp -d)/run
  start=$(date +%s.%N)
  ../.venv/bin/unetkit train $SETS/$1/train --instance-masks --base-width 16 --weight-init glorot-pytorch-bias \
    --max-time 3m --seed $2 --out $out --no-progress > $out.log 2>&1
  end=$(date +%s.%N)
  steps=$(python3 -c "import json; print(json.load(open('$out/result.json'))['steps'])")
  dice=$(../.venv/bin/unetkit evaluate $out/best.pt $SETS/$1/test --instance-masks 2>/dev/null | grep -i 'mean' | head -1)
  echo "$1 seed $2: train wall $(python3 -c "print(round($end - $start))") s, $steps steps; $dice"
done
