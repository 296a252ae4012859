# A lead for the sparse bacteria in 3 minutes: batches of 2 (more steps in the same time), 2026-12-06; 2-core AMD EPYC
# Zen 4, no AMX (BENCHMARKS.md, "Seventh session (2026-12-06)", "Batches of 2 on the bacteria"). Run from benchmarks/.
P=../.venv/bin/python
# steps in 40 s of training, one thread each, the two side by side (the ratio gives the equal-time step count):
for b in 4 2; do OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria --seeds 0 --set batch_size=$b --set upper_percentile=99 --set normalization_jitter=1.0 --max-time 40 > results_batch2/rate_batch$b.txt & done; wait
# batches of 2 for as long as 1,000 steps of 4 take (1,750 steps: five 350-step epochs), one thread each, side by side;
# the batch-4 runs: ../results_upper99_share/steps1000_upper99_jitter1_seed*.txt, ../results_cooldown/steps1000_constant_*
S="--set epochs=5 --set steps_per_epoch=350 --set batch_size=2 --set schedule=warmup-constant --set early_stopping=3 --set max_time_s=None --set upper_percentile=99 --set normalization_jitter=1.0"
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria --seeds 0 2 $S > results_batch2/steps1750_batch2_bacteria_seeds02.txt &
OMP_NUM_THREADS=1 $P levers_study.py --sets bacteria --seeds 1 3 $S > results_batch2/steps1750_batch2_bacteria_seeds13.txt &
wait
