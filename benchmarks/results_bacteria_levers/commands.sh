# Four more leads for the sparse bacteria at 1,000 steps, 2026-12-06 (eighth session); 2-core AMD EPYC Zen 4, no AMX
# (BENCHMARKS.md, "Eighth session (2026-12-06)"). One torch thread per run, two (or four) side by side: a run of fixed
# length does not depend on the load. Run from benchmarks/.
P=../.venv/bin/python
# 1. The head's bias set to the log-odds of the foreground share of the first 8 batches' patches (the "prior"
#    initialisation of focal-loss detectors), instead of PyTorch's default. Study only: in a checkout of 7c50617,
#    (cd .. && patch -p1 < benchmarks/results_bacteria_levers/prior_bias.diff), then, with UNETKIT_PRIOR_BIAS=1:
for s in 0 1; do UNETKIT_PRIOR_BIAS=1 OMP_NUM_THREADS=1 $P length_study.py long --sets bacteria --epochs 5 --patch-size 128 --steps-per-epoch 200 --seed $s --upper-percentile 99 --normalization-jitter 1.0 --logs /tmp/prior_s$s & done; wait
#    (the logs, renamed: prior_bias_seed0.json, prior_bias_seed1.json)
# 2. Learning rate 2e-3 (needs 4a37a03: before it, length_study.py long ignored --lr):
for s in 0 1; do OMP_NUM_THREADS=1 $P length_study.py long --sets bacteria --epochs 5 --lr 2e-3 --patch-size 128 --steps-per-epoch 200 --seed $s --upper-percentile 99 --normalization-jitter 1.0 --logs /tmp/lr2_s$s & done; wait
#    (renamed: lr2e-3_seed0.json, lr2e-3_seed1.json). The default's curves: seed 0 is the first 5 epochs of
#    ../results_upper99_share/length/bacteria_128px_200steps_seed0.json; seed 1 ran with --lr ignored (before 4a37a03),
#    so it is the default's own, cut after epoch 4 (quoted in BENCHMARKS.md); epoch 5 is
#    ../results_upper99_share/steps1000_upper99_jitter1_seed1.txt.
# 3. and 4. Flips only (no affine, elastic or intensity changes), and the Dice loss alone (the reference's):
C="--sets bacteria --seeds 0 --set epochs=5 --set schedule=warmup-constant --set early_stopping=3 --set max_time_s=None --set upper_percentile=99 --set normalization_jitter=1.0 --set foreground_fraction=0.67 --set lr=1e-3 --set batch_size=4"
OMP_NUM_THREADS=1 $P levers_study.py $C --set augment=flips --set loss=dice+bce > results_bacteria_levers/augment_flips_seed0.txt &
OMP_NUM_THREADS=1 $P levers_study.py $C --set augment=gamma-noise --set loss=dice > results_bacteria_levers/loss_dice_seed0.txt &
wait
