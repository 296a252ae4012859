#!/usr/bin/env bash
# The 3-minute run itself, as a user types it (two threads, the machine otherwise quiet): the quarter-width network
# started as the Keras reference starts, --max-time 3m, then the test Dice of best.pt; the wall time of the train call.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=~/.cache/unetkit-study/sets
for run in "bacteria 1" "bbbc007 0" "bacteria 2" "hela 0"; do
  set -- $run
  out=$(mktemp -d)/run
  start=$(date +%s.%N)
  ../.venv/bin/unetkit train $SETS/$1/train --instance-masks --base-width 16 --weight-init glorot --max-time 3m \
    --seed $2 --out $out --no-progress > $out.log 2>&1
  end=$(date +%s.%N)
  steps=$(python3 -c "import json; print(json.load(open('$out/result.json'))['steps'])")
  dice=$(../.venv/bin/unetkit evaluate $out/best.pt $SETS/$1/test --instance-masks 2>/dev/null | grep -i 'mean' | head -1)
  echo "$1 seed $2: train wall $(python3 -c "print(round($end - $start))") s, $steps steps; $dice"
done
