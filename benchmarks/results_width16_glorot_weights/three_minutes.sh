#!/usr/bin/env bash
# Issue 16, twenty-fifth session (2026-12-07): the quarter-width network (--base-width 16) started with glorot's
# weights and PyTorch's own random biases (study only: glorot_pytorch_bias.diff, applied to a clone, makes
# --weight-init glorot keep PyTorch's biases). The 3-minute run as a user types it (two threads, the machine otherwise
# quiet, one run after the other), then the test Dice of best.pt (unetkit evaluate), as
# results_width16_glorot/three_minutes.sh does. Machine: 2-core AMD EPYC Zen 4 (avx512_bf16, no AMX), torch 2.13.0+cpu.
#   git clone -q . /tmp/lead19 && (cd /tmp/lead19 && git apply benchmarks/results_width16_glorot_weights/glorot_pytorch_bias.diff)
#   SRC=/tmp/lead19/src benchmarks/results_width16_glorot_weights/three_minutes.sh > three_minutes.txt
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:?the clone with the diff applied: SRC=/tmp/lead19/src}
SETS=~/.cache/unetkit-study/sets
for run in "bacteria 2" "bbbc007 0" "bacteria 1" "hela 0" "cho 0" "cells3d 0" "bacteria 0" "bbbc007 1" "bacteria 1"; do
  set -- $run
  out=$(mktemp -d)/run
  start=$(date +%s.%N)
  PYTHONPATH=$SRC ../.venv/bin/python -m unetkit train $SETS/$1/train --instance-masks --base-width 16 \
    --weight-init glorot --max-time 3m --seed $2 --out $out --no-progress > $out.log 2>&1
  end=$(date +%s.%N)
  steps=$(python3 -c "import json; print(json.load(open('$out/result.json'))['steps'])")
  dice=$(PYTHONPATH=$SRC ../.venv/bin/python -m unetkit evaluate $out/best.pt $SETS/$1/test --instance-masks 2>/dev/null \
         | grep -i 'mean' | head -1)
  echo "$1 seed $2: train wall $(python3 -c "print(round($end - $start))") s, $steps steps; $dice"
done
