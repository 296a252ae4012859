# Glorot's weights with PyTorch's biases (study only: glorot_pytorch_bias.diff makes `--weight-init glorot` keep the
# biases PyTorch drew when it built the layers, so the weights are glorot's own and the biases PyTorch's at the same
# seed). Twelfth session, 2026-12-06 (BENCHMARKS.md, "Is BBBC007's fall glorot's"): 2-core AMD EPYC Zen 4, no AMX,
# torch 2.13.0+cpu, bf16 autocast; one torch thread per run, two side by side. Run from benchmarks/, with the diff
# applied in a worktree at /tmp/wt_gb:
#   git worktree add /tmp/wt_gb -b study-glorot-pytorch-bias && (cd /tmp/wt_gb && git apply PATH/TO/glorot_pytorch_bias.diff)
P=../.venv/bin/python
for set in bacteria bbbc007; do
    PYTHONPATH=/tmp/wt_gb/src OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 0 --epochs 5 \
        --weight-init glorot --out results_glorot_pytorch_bias &
done
wait
$P selection_study.py --compare results_selection results_glorot_pytorch_bias > results_glorot_pytorch_bias/compare_pytorch.md
$P selection_study.py --compare results_glorot results_glorot_pytorch_bias > results_glorot_pytorch_bias/compare_glorot.md
