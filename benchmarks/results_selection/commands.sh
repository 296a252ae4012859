# Which model should best.pt keep? Every epoch's model (the moving average) scored on the test images, 1,000 steps
# (five 200-step epochs, the pixel default of 2026-12-05, the warm-up-constant schedule), and selection rules replayed:
# the best validation epoch (today's), the latest epoch within a margin of the best validation score, the last epoch.
# 2026-12-06 (BENCHMARKS.md, "Eighth session", "Which model best.pt keeps"); 2-core AMD EPYC Zen 4, no AMX; one torch
# thread per run, two side by side. Run from benchmarks/.
P=../.venv/bin/python
OMP_NUM_THREADS=1 $P selection_study.py --set hela --seed 1 --epochs 5 --out results_selection &
OMP_NUM_THREADS=1 $P selection_study.py --set cho --seed 0 --epochs 5 --out results_selection &
wait
OMP_NUM_THREADS=1 $P selection_study.py --set hela --seed 0 --epochs 5 --out results_selection &
OMP_NUM_THREADS=1 $P selection_study.py --set cells3d --seed 0 --epochs 5 --out results_selection &
wait
# Ninth session, 2026-12-06 (BENCHMARKS.md, "Which model best.pt keeps"): 40 epochs of the bacteria and BBBC007 (seed 0;
# epochs40/, about 70 minutes each, two side by side), then five epochs at seed 1 of CHO, cells3d, the bacteria, BBBC007.
mkdir -p results_selection/epochs40
OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --seed 0 --epochs 40 --out results_selection/epochs40 &
OMP_NUM_THREADS=1 $P selection_study.py --set bbbc007 --seed 0 --epochs 40 --out results_selection/epochs40 &
wait
for pair in "cho cells3d" "bacteria bbbc007"; do  # two side by side
    for set in $pair; do OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 1 --epochs 5 --out results_selection & done
    wait
done
for set in hela cho; do OMP_NUM_THREADS=1 $P selection_study.py --set $set --seed 2 --epochs 5 --out results_selection & done
wait
# the table (seconds): what each margin keeps where the rule ends a run, after 1,000 steps and after all epochs
$P selection_study.py --replay results_selection/*.json results_selection/epochs40/*.json > results_selection/replay.md
# objects: the same replay on the 16-epoch instance curves of 2026-11-28 (test F1)
$P instance_length_study.py keep --logs results_instance_length > results_selection/instances_keep.md
# Eleventh session, 2026-12-06: bacteria_seed2.json and bbbc007_seed2.json (PyTorch's default, beside glorot's) and
# this folder's replay.md again: ../results_glorot/commands.sh.
