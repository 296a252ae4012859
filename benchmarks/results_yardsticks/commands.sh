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
