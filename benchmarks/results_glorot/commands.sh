# Glorot (the Keras reference's initialisation): the five-epoch runs of seeds 0 and 1 are in ../results_he/commands.sh
# (tenth session). Eleventh session, 2026-12-06 (BENCHMARKS.md, "Glorot's own 40 epochs"): 2-core AMD EPYC Zen 4, no
# AMX, torch 2.13.0+cpu, bf16 autocast; one torch thread per run, two to five side by side (a run of fixed length does
# not depend on the load). Run from benchmarks/.
P=../.venv/bin/python
# glorot's own 40 epochs, seed 0 (about 105 minutes each here, beside the runs below)
mkdir -p results_glorot/epochs40
for set in bacteria bbbc007; do
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 0 --epochs 40 --weight-init glorot --out results_glorot/epochs40 &
done
# a third seed, glorot and PyTorch's default (the latter into results_selection/, the "before" of --compare)
for set in bbbc007 bacteria; do
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 2 --epochs 5 --weight-init glorot --out results_glorot &
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 2 --epochs 5 --weight-init pytorch --out results_selection &
    wait
done
$P selection_study.py --compare results_selection results_glorot > results_glorot/compare.md
$P selection_study.py --replay results_glorot/*.json results_glorot/epochs40/*.json > results_glorot/replay.md
$P selection_study.py --replay results_selection/*.json results_selection/epochs40/*.json > results_selection/replay.md
# Objects: the default instance run on the sample with glorot, seeds 0 to 2, scored on its held-out frames
# (instances.txt; the runs went to /tmp/g_inst/runS)
U="env OMP_NUM_THREADS=1 ../.venv/bin/unetkit"
for s in 0 1 2; do R=/tmp/g_inst/run$s
    $U train --task instances --weight-init glorot --seed $s --out $R --no-progress && $U evaluate $R/best.pt sample:heldout \
        --ignore-border-objects && $U evaluate $R/best.pt sample:heldout --csv /tmp/g_inst/every$s.csv
done
# What BBBC007's 40-epoch model does on its test frames: the moving average of the run's last.pt (taken during epoch 30 while it ran, test Dice 0.919;
# length_study.averaged_checkpoint), `unetkit predict` on the two test frames, then precision, recall and the share of
# each annotated nucleus covered, counted in a scratch script (not kept).
wait
