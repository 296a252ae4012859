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
