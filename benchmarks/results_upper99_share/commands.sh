# The normalisation's bounds follow the task (BENCHMARKS.md), 2026-12-05, sixth session; 2-core AMD EPYC Zen 4, no AMX.
# Run from benchmarks/. Runs of a fixed length and rule-ended runs do not depend on the machine's load, only on the
# number of torch threads: one thread each, side by side. 1,000 steps (five 200-step epochs) with the warm-up-constant
# schedule and the rule (patience 3): the 3-minute run of a quiet machine here (1,000 to 1,150 steps in earlier
# sessions), without its dependence on the load. Every option is given explicitly: the defaults changed in between.
P=../.venv/bin/python
S="--set epochs=5 --set schedule=warmup-constant --set early_stopping=3 --set max_time_s=None"
# the default of the time (99.8th, half the patches jittered; run with the code before e163a4a, whose defaults these
# were: its header names only the --set changes) and the candidate (99th, every patch), seed 0:
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria cells3d hela cho bbbc007 --seeds 0 $S > steps1000_default_seed0.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria cells3d hela cho bbbc007 --seeds 0 $S --set upper_percentile=99 --set normalization_jitter=1.0 > steps1000_upper99_jitter1_seed0.txt
# one lever at a time on the sample, with its model on other microscopes:
OMP_NUM_THREADS=1 $P levers_study.py --sets hela --seeds 0 $S --set upper_percentile=99 --set normalization_jitter=0.5 --cross > steps1000_hela_upper99_jitter05_seed0.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets hela --seeds 0 $S --set upper_percentile=99.8 --set normalization_jitter=1.0 --cross > steps1000_hela_upper998_jitter1_seed0.txt
# seed 1:
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria cells3d hela --seeds 1 $S --set upper_percentile=99.8 --set normalization_jitter=0.5 > steps1000_default_seed1.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria cells3d hela cho bbbc007 --seeds 1 $S --set upper_percentile=99 --set normalization_jitter=1.0 > steps1000_upper99_jitter1_seed1.txt
OMP_NUM_THREADS=1 $P levers_study.py --sets cho bbbc007 --seeds 1 $S --set upper_percentile=99.8 --set normalization_jitter=0.5 > steps1000_default_seed1_cho_bbbc007.txt
# the sample's models on other microscopes (the run folders the runs above left in /tmp):
$P levers_study.py --score RUN_DIR ...   # cross_hela_*.txt
# 3 minutes, quiet, the 99th with half the patches jittered (the jitter default before e163a4a, with which it ran;
# the machine was slower this session: about 730 steps):
$P levers_study.py --sets bacteria cells3d --seeds 0 --set upper_percentile=99 > slow_machine_3min_upper99_seed0.txt
# the README's first command from a fresh clone, quiet (readme_first_command.txt: the lines after the progress bars):
../../shared/tools/fresh-clone-check "$(sed -n 12p ../README.md)"
# the new default's 40 epochs on the bacteria, seed 0, one thread (cut, resumed, cut again: length/):
OMP_NUM_THREADS=1 $P length_study.py long --sets bacteria --patch-size 128 --steps-per-epoch 200 --seed 0 --upper-percentile 99 --normalization-jitter 1.0 --logs results_upper99_share/length
OMP_NUM_THREADS=1 $P length_study.py resume --runs bacteria=/tmp/tmp2b13krdy/bacteria --logs results_upper99_share/length
