# Glorot (the Keras reference's initialisation): the five-epoch runs of seeds 0 and 1 are in ../results_he/commands.sh
# (tenth session). Eleventh session, 2026-12-06 (BENCHMARKS.md, "Glorot's own 40 epochs"): 2-core AMD EPYC Zen 4, no
# AMX, torch 2.13.0+cpu, bf16 autocast; one torch thread per run, two to five side by side (a run of fixed length does
# not depend on the load). Run from benchmarks/.
P=../.venv/bin/python
# The curves were made by selection_study.py as of f97f779 (it wrote each curve once, at the end; its summary lines
# read "N epochs of 200 steps"); today's writes the curve after every epoch, with "planned_epochs", and "N of N epochs".
# glorot's own 40 epochs, seed 0 (about 105 minutes each here, beside the runs below and the objects)
mkdir -p results_glorot/epochs40
for set in bacteria bbbc007; do
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 0 --epochs 40 --weight-init glorot --out results_glorot/epochs40 &
    long="$long $!"
done
# a third seed, glorot and PyTorch's default (the latter into results_selection/, the "before" of --compare)
for set in bbbc007 bacteria; do
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 2 --epochs 5 --weight-init glorot --out results_glorot &
    a=$!
    OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 2 --epochs 5 --weight-init pytorch --out results_selection &
    wait $a $!
done
wait $long
$P selection_study.py --compare results_selection results_glorot > results_glorot/compare.md
$P selection_study.py --replay results_glorot/*.json results_glorot/epochs40/*.json > results_glorot/replay.md
$P selection_study.py --replay results_selection/*.json results_selection/epochs40/*.json > results_selection/replay.md
# Objects: the default instance run on the sample with glorot, seeds 0 to 2, scored on its held-out frames
# (instances.txt; run from /tmp/g_inst, so the file names the runs run0..run2 and the CSVs every0..every2.csv)
U="env OMP_NUM_THREADS=1 $PWD/../.venv/bin/unetkit"
mkdir -p /tmp/g_inst && cd /tmp/g_inst
for s in 0 1 2; do
    echo "## seed $s, --weight-init glorot, otherwise the default instance run (unetkit train --task instances --seed $s)"
    $U train --task instances --weight-init glorot --seed $s --out run$s --no-progress 2>&1 | tail -n 1
    echo "held-out frames, --ignore-border-objects:" && $U evaluate run$s/best.pt sample:heldout --ignore-border-objects
    echo "every labelled object:" && $U evaluate run$s/best.pt sample:heldout --csv every$s.csv
done > instances.txt
cd - && cp /tmp/g_inst/instances.txt results_glorot/
# What BBBC007's 40-epoch model does on its test frames: the moving average of the run's last.pt (taken during epoch 30 while it ran, test Dice 0.919;
# length_study.averaged_checkpoint), `unetkit predict` on the two test frames, then precision, recall and the share of
# each labelled nucleus covered:
$P results_glorot/bbbc007_fall.py > results_glorot/bbbc007_fall.txt

# Twelfth session, 2026-12-06 (BENCHMARKS.md, "Is BBBC007's fall glorot's or seed 0's?"): same machine, one torch
# thread per run, three side by side (about 100 minutes each). Run from benchmarks/.
OMP_NUM_THREADS=1 $P selection_study.py --set bbbc007 --seed 1 --epochs 40 --weight-init glorot --out results_glorot/epochs40 &
OMP_NUM_THREADS=1 $P selection_study.py --set bbbc007 --seed 2 --epochs 40 --weight-init glorot --out results_glorot/epochs40 &
OMP_NUM_THREADS=1 $P selection_study.py --set bbbc007 --seed 1 --epochs 40 --weight-init pytorch --out results_selection/epochs40 &
wait
$P selection_study.py --replay results_glorot/epochs40/bbbc007_seed*.json > results_glorot/replay_bbbc007_40.md
$P selection_study.py --replay results_selection/epochs40/bbbc007_seed*.json > results_selection/replay_bbbc007_40.md
# Do the models follow the brightness of their input? The moving average of each run's last.pt, as
# length_study.averaged_checkpoint writes it. selection_study.py trains in a temporary folder (tempfile.mkdtemp()/SET)
# and leaves it there; find each run's by its config.json (seed, epochs, weight_init):
#   grep -l '"epochs": 40' /tmp/tmp*/bbbc007/config.json | xargs grep -H '"seed"\|"weight_init"'
# The runs used: glorot's 5-epoch run at seed 0 (results_he/commands.sh), the 40-epoch runs of seed 0 (above) and
# of this session. For each, with RUN its folder and NAME as below:
#   $P -c "from pathlib import Path; from length_study import averaged_checkpoint; averaged_checkpoint(Path('RUN'), Path('/tmp/ck/NAME.pt'))"
$P results_glorot/bbbc007_curves.py > results_glorot/bbbc007_curves.md
$P results_glorot/bbbc007_brightness.py glorot_5_seed0=/tmp/ck/glorot_5_seed0.pt pytorch_40_seed0=/tmp/ck/pytorch_40_seed0.pt \
    glorot_40_seed0=/tmp/ck/glorot_40_seed0.pt pytorch_40_seed1=/tmp/ck/pytorch_40_seed1.pt \
    glorot_40_seed1=/tmp/ck/glorot_40_seed1.pt glorot_40_seed2=/tmp/ck/glorot_40_seed2.pt > results_glorot/bbbc007_brightness.md
$P results_glorot/bbbc007_brightness.py >> results_glorot/bbbc007_brightness.md   # the one-threshold baseline
