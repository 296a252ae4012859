#!/usr/bin/env bash
# The laptop recipe for objects: the sample's default instance run (the rule, 256-px patches, 50-step epochs) with
# --base-width 16 --weight-init glorot-pytorch-bias, seeds 0 to 2, then the held-out F1 (border objects out, and all),
# against the reference network's 0.951 / 0.953 / 0.952 (BENCHMARKS.md, "The sample's held-out frames"). One torch
# thread (OMP_NUM_THREADS=1 from commands.sh), beside another run: the seconds are not the point. Run from benchmarks/.
set -uo pipefail
for seed in 0 1 2; do
  out=$(mktemp -d)/run
  ../.venv/bin/unetkit train --task instances --base-width 16 --weight-init glorot-pytorch-bias --seed $seed \
    --out $out --no-progress > $out.log 2>&1
  python3 -c "import json; r = json.load(open('$out/result.json')); print('seed $seed:', r['epochs_completed'], 'epochs,', r['steps'], 'steps,', r['why'] + ';', 'kept epoch', r['kept_epoch'])"
  echo "  border objects out:"
  ../.venv/bin/unetkit evaluate $out/best.pt sample:heldout --ignore-border-objects --csv $out/border_out.csv 2>&1 \
    | grep -iE "^image|^mean"
  echo "  every object:"
  ../.venv/bin/unetkit evaluate $out/best.pt sample:heldout --csv $out/every.csv 2>&1 | grep -iE "^image|^mean"
done
