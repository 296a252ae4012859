#!/usr/bin/env bash
# How far bf16 prediction (the checkpoint's default on a CPU with bf16) is from fp32: a reference network trained one
# epoch on the public HeLa set (benchmarks/public_data.py), its probabilities on the first test frame both ways.
# Run from the root; output: benchmarks/results_precision_predict.txt (README, bioimage.io packages).
set -euo pipefail
SETS=~/.cache/unetkit-study/sets
out=$(mktemp -d)
.venv/bin/unetkit train $SETS/hela/train --instance-masks --epochs 1 --out $out/run --no-progress > $out/train.log 2>&1
image=$(ls $SETS/hela/test/images/* | head -1)
for precision in bf16 fp32; do
  .venv/bin/unetkit predict $out/run/best.pt $image --out $out/$precision --probabilities --precision $precision \
    --no-progress > /dev/null
done
.venv/bin/python - "$out" <<'PY'
import glob, sys, numpy as np, tifffile
out = sys.argv[1]
bf16, fp32 = (tifffile.imread(glob.glob(f"{out}/{p}/*_probabilities.tif")[0]) for p in ("bf16", "fp32"))
difference = np.abs(bf16 - fp32)
print(f"frame {bf16.shape}: |bf16 - fp32| mean {difference.mean():.1e}, 99th percentile "
      f"{np.percentile(difference, 99):.1e}, max {difference.max():.1e}; pixels whose class changed "
      f"{((bf16 > 0.5) != (fp32 > 0.5)).mean():.1e}")
PY
