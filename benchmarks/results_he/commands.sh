# He initialisation (the U-Net paper's) and glorot (the Keras reference's) against PyTorch's default, 2026-12-06
# (tenth session; BENCHMARKS.md, "How the weights start"). 2-core AMD EPYC Zen 4, no AMX, torch 2.13.0+cpu, bf16 autocast; one torch thread per run, two to
# four side by side (a run of fixed length does not depend on the load). Run from benchmarks/.
P=../.venv/bin/python
# Every epoch's model scored on the test images, five 200-step epochs (1,000 steps), the pixel defaults with
# --weight-init he. The "before" curves are those of results_selection/ (PyTorch's default init, unetkit's default:
# the same command without --weight-init). CHO seed 1 and BBBC007 seed 0 were started and stopped for time (the
# glorot runs below came first). bacteria seed 1 ran through a study-only wrapper that re-drew every convolution
# the same way after the model was built (the same weights, checked tensor for tensor) before --weight-init existed.
for job in "bacteria 1" "hela 1" "cho 0" "cells3d 0" "cells3d 1" "bbbc007 1" "hela 0"; do
    set -- $job
    OMP_NUM_THREADS=1 $P selection_study.py --set $1 --seed $2 --epochs 5 --weight-init he --out results_he
done
# 40 epochs of the bacteria, seed 0 (beside the runs above, about 100 minutes here):
OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --seed 0 --epochs 40 --weight-init he --out results_he/epochs40
# the tables: before / after at each 200 steps, and what each margin keeps
$P selection_study.py --compare results_selection results_he > results_he/compare.md
$P selection_study.py --replay results_he/*.json results_he/epochs40/*.json > results_he/replay.md
# Objects: the default instance run on the sample, seeds 0 to 2, scored on its held-out frames (issue 13's target)
for s in 0 1 2; do
    OMP_NUM_THREADS=1 ../.venv/bin/unetkit train --task instances --weight-init he --seed $s --out /tmp/he_inst/run$s --no-progress
    OMP_NUM_THREADS=1 ../.venv/bin/unetkit evaluate /tmp/he_inst/run$s/best.pt sample:heldout --ignore-border-objects
    OMP_NUM_THREADS=1 ../.venv/bin/unetkit evaluate /tmp/he_inst/run$s/best.pt sample:heldout --csv /tmp/he_inst/all$s.csv
done
# The Keras reference's initialisation (glorot uniform), the same five epochs (results_glorot/):
for job in "bacteria 1" "bbbc007 1" "bacteria 0" "bbbc007 0" "cells3d 1" "hela 1" "cho 0" "hela 0" "cho 1" "cells3d 0"; do
    set -- $job
    OMP_NUM_THREADS=1 $P selection_study.py --set $1 --seed $2 --epochs 5 --weight-init glorot --out results_glorot
done
$P selection_study.py --compare results_selection results_glorot > results_glorot/compare.md
