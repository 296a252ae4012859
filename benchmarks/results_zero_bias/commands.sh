# PyTorch's weights with the biases at zero (glorot's and He's biases; study only: zero_bias.diff makes
# `--weight-init pytorch` zero every convolution's bias after PyTorch has drawn the weights, so the weights are
# exactly PyTorch's default at the same seed). Twelfth session, 2026-12-06 (BENCHMARKS.md, "Is BBBC007's fall
# glorot's"): 2-core AMD EPYC Zen 4, no AMX, torch 2.13.0+cpu, bf16 autocast; one torch thread per run, two to four
# side by side. Run from benchmarks/, with the diff applied in a worktree at /tmp/wt_zb:
#   git worktree add /tmp/wt_zb -b study-zero-bias && (cd /tmp/wt_zb && git apply PATH/TO/zero_bias.diff)
P=../.venv/bin/python
run() {  # set, seed
    PYTHONPATH=/tmp/wt_zb/src OMP_NUM_THREADS=1 $P selection_study.py --set $1 --seed $2 --epochs 5 \
        --weight-init pytorch --out results_zero_bias
}
run bacteria 2 & run bacteria 0 & wait   # seed 2: PyTorch's stall
run bbbc007 0 & run bbbc007 1 & wait
$P selection_study.py --compare results_selection results_zero_bias > results_zero_bias/compare_pytorch.md
$P selection_study.py --compare results_glorot results_zero_bias > results_zero_bias/compare_glorot.md
