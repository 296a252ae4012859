# Sixteenth session (2026-12-06): the bacteria trained on all four training frames, no validation frame
# (--val-fraction 0: the loss rule ends such a run, best.pt keeps its last epoch), every epoch's model scored on the
# test frames. From benchmarks/: side by side, one torch thread each.
P=../.venv/bin/python
OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --seed 0 --epochs 10 --change val_fraction=0 --out results_trainall > results_trainall/seed0.log 2>&1 &
OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --seed 2 --epochs 10 --change val_fraction=0 --out results_trainall > results_trainall/seed2.log 2>&1 &
wait
