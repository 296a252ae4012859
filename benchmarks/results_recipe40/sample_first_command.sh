#!/usr/bin/env bash
# The README's first command with the laptop recipe (twenty-sixth session, 2026-12-08): train on the embedded HeLa
# sample for 3 minutes of training, then the held-out frames' Dice; two threads, the machine quiet. Run from the root.
set -euo pipefail
out=$(mktemp -d)/hela
start=$(date +%s.%N)
.venv/bin/unetkit train --out $out --base-width 16 --weight-init glorot-pytorch-bias --max-time 3m --no-progress
.venv/bin/unetkit predict $out/best.pt sample:heldout --out $out/heldout --no-progress
.venv/bin/unetkit evaluate $out/best.pt sample:heldout
end=$(date +%s.%N)
cat $out/result.json
echo "train, predict and evaluate: $(python3 -c "print(round($end - $start))") s"
