# Sparse objects and the foreground share (BENCHMARKS.md), 2026-12-05, fifth session; 2-core AMD EPYC Zen 4, no AMX.
# P=".venv/bin/python"; run from the repository root; the sets come from benchmarks/public_data.py.
# Runs of a fixed length (--set epochs=5: 1,000 steps, what 3 minutes give here when the machine is quiet) and runs
# ended by the rule do not depend on the machine's load, only on the number of torch threads, so they ran side by side.
P=".venv/bin/python"
# the bacteria's 40-epoch yardstick with the default of the time (foreground share 1/3), seed 0, one thread:
OMP_NUM_THREADS=1 $P benchmarks/length_study.py long --sets bacteria --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_length_128
$P benchmarks/length_study.py rules --logs benchmarks/results_length_128 > benchmarks/results_length_128/rules.txt
# 1,000 steps on the bacteria (with --epochs: a cosine schedule to step 1,000), seeds 0-3, one thread each: the share 1/3, 2/3, 1, and 2/3 with jitter 1.0
for s in 0 1 2 3; do (cd benchmarks && OMP_NUM_THREADS=1 ../$P levers_study.py --sets bacteria --seeds $s --set epochs=5 --set max_time_s=None --set foreground_fraction=0.33); done
for s in 0 1 2 3; do (cd benchmarks && OMP_NUM_THREADS=1 ../$P levers_study.py --sets bacteria --seeds $s --set epochs=5 --set max_time_s=None --set foreground_fraction=0.67); done
for s in 0 1; do (cd benchmarks && OMP_NUM_THREADS=1 ../$P levers_study.py --sets bacteria --seeds $s --set epochs=5 --set max_time_s=None --set foreground_fraction=1.0); done
for s in 0 1 2 3; do (cd benchmarks && OMP_NUM_THREADS=1 ../$P levers_study.py --sets bacteria --seeds $s --set epochs=5 --set max_time_s=None --set foreground_fraction=0.67 --set normalization_jitter=1.0); done
# the crowded sets with the share 2/3, at most 1,000 steps with the rule (two threads, as the 3-minute runs it is compared with), seed 0:
(cd benchmarks && OMP_NUM_THREADS=2 ../$P levers_study.py --sets cells3d hela cho bbbc007 --seeds 0 --set epochs=5 --set early_stopping=3 --set max_time_s=None --set foreground_fraction=0.67)
# the bacteria's 40-epoch yardstick with the new default (share 2/3), seed 0, one thread:
OMP_NUM_THREADS=1 $P benchmarks/length_study.py long --sets bacteria --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_foreground/length
# the sample's instance runs with the share 2/3, seeds 0 1 2 (two threads): see instances_sample_share067_seeds012.txt
$P benchmarks/length_study.py rules --logs benchmarks/results_foreground/length > benchmarks/results_foreground/length/rules.txt
# the new default, 3 minutes, quiet (two threads):
(cd benchmarks && ../$P levers_study.py --sets bacteria --seeds 0 1) > benchmarks/results_foreground/bacteria_3min_seeds01.txt
# the README's first command from a fresh clone, quiet:
../shared/tools/fresh-clone-check "$(sed -n 12p README.md)"
# the crowded sets with the new default, 3 minutes, quiet, seed 0, with the sample's model on other microscopes:
(cd benchmarks && ../$P levers_study.py --sets cells3d hela cho bbbc007 --seeds 0 --cross) > benchmarks/results_foreground/crowded_3min_seed0.txt
