# The new default's own 40 epochs on HeLa and CHO, seed 0 (BENCHMARKS.md, "Seventh session (2026-12-06)"), 2026-12-06;
# 2-core AMD EPYC Zen 4, no AMX. Run from benchmarks/. The two long runs side by side, one torch thread each (a run of
# fixed length does not depend on the load; the seconds in their logs do), with the pixel default of 2026-12-05:
# 128-px patches, 200-step epochs, the 99th percentile, every patch jittered, the foreground share 2/3 (the
# working tree's default, recorded in each log).
P=../.venv/bin/python
for s in hela cho; do
  OMP_NUM_THREADS=1 $P length_study.py long --sets $s --patch-size 128 --steps-per-epoch 200 --seed 0 --upper-percentile 99 --normalization-jitter 1.0 --logs results_yardsticks/length > results_yardsticks/long_$s.out &
done; wait
# the default rule replayed on the two curves:
$P length_study.py rules --logs results_yardsticks/length > results_yardsticks/rules.txt
# the 3-minute default (--max-time 180 s, two threads), quiet, one run after the other, to see this session's speed:
$P levers_study.py --sets hela bacteria --seeds 0 > results_yardsticks/quiet_3min_hela_bacteria_seed0.txt
# Eighth session (2026-12-06): the same for cells3d at seed 0 and HeLa at seed 1 (BENCHMARKS.md, "Eighth session"),
# side by side, one torch thread each (two more runs beside them for a quarter of the time), then the rule replayed on
# all four curves (rules.txt above is then rewritten with the four):
OMP_NUM_THREADS=1 $P length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --seed 0 --upper-percentile 99 --normalization-jitter 1.0 --logs results_yardsticks/length > results_yardsticks/long_cells3d_seed0.out &
OMP_NUM_THREADS=1 $P length_study.py long --sets hela --patch-size 128 --steps-per-epoch 200 --seed 1 --upper-percentile 99 --normalization-jitter 1.0 --logs results_yardsticks/length > results_yardsticks/long_hela_seed1.out &
wait
$P length_study.py rules --logs results_yardsticks/length > results_yardsticks/rules.txt
# Does validation pick the better model? best.pt against the last epoch's models (the moving average and the raw
# weights) of the four 40-epoch runs and of the 1,000-step runs of HeLa (seed 1) and CHO (seeds 0, 1) that the rule
# ended after 800 steps (../results_upper99_share/commands.sh). The runs' folders were temporary (/tmp/tmpXXXX/SET):
# the 40-epoch ones are printed first in long_*.out, and last_models.txt names each; in the order of that table:
$P length_study.py last --runs hela=HELA_SEED1_40 hela=HELA_SEED0_40 hela=HELA_SEED1_1000 cho=CHO_SEED0_40 cho=CHO_SEED0_1000 cho=CHO_SEED1_1000 cells3d=CELLS3D_SEED0_40 > results_yardsticks/last_models.txt
# the README's first command from a fresh clone, quiet (the progress bars then taken out of the output):
../../shared/tools/fresh-clone-check "$(sed -n 12p ../README.md)" > results_yardsticks/readme_first_command.txt 2>&1
