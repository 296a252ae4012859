# A fall of the learning rate to 0 at the end of the run, re-measured with today's default (BENCHMARKS.md, "Seventh
# session (2026-12-06): a fall to zero again, and the new default's own 40 epochs on HeLa and CHO"), 2026-12-06; 2-core AMD EPYC Zen 4,
# no AMX. The schedule `warmup-stable-decay` (warm-up over 25 steps, constant, then a linear fall to 0 over the last
# 20 % of the steps, or of the --max-time budget, whichever is further on) existed in commit 341595c only:
# `git checkout 341595c` to run these. Run from benchmarks/, one torch thread each, two side by side (a run of fixed
# length does not depend on the load); every studied option given explicitly.
P=../.venv/bin/python
S="--set epochs=5 --set early_stopping=3 --set max_time_s=None --set upper_percentile=99 --set normalization_jitter=1.0"
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria --seeds 0 1 2 3 $S --set schedule=warmup-stable-decay > steps1000_wsd_bacteria_seeds0123.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria --seeds 2 3 $S --set schedule=warmup-constant > steps1000_constant_bacteria_seeds23.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets hela cells3d --seeds 0 $S --set schedule=warmup-stable-decay > steps1000_wsd_hela_cells3d_seed0.txt
# the warm-up-constant runs of seeds 0 and 1 on the five sets: ../results_upper99_share/steps1000_upper99_jitter1_seed*.txt
