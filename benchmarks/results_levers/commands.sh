# The runs behind BENCHMARKS.md "What else might close cells3d's gap in 3 minutes" (issue 16),
# 2026-12-05, 2-core AMD EPYC Zen 4 (no AMX), torch 2.13.0+cpu, bf16 autocast; one run after the
# other, the machine otherwise quiet. Every run: unetkit train's defaults (128-px patches, 200-step
# epochs, the stopping rule) with --max-time 180, test Dice of best.pt.
#
# The *.txt files were written by a first draft of levers_study.py (a script in /tmp with the same
# runs, swaps and scoring; its lines name the changes and the run folder); levers_study.py is that
# draft made readable, and these commands run the same thing. scale_augment_seed0.txt was run with
# an uncommitted preset "gamma-noise-scale" that drew exactly what --scale-augment draws (the scale
# first, only when on), and was taken out again when the study did not keep it.
# The draft's lines say "norm batch" for "no --group-norm swap" (batch norm is on only where the
# changes name batch_norm=True), and "aug scale" for --scale-augment.
# other_microscopes.txt names run folders: tmph00liu7f / tmps7qhi6nq are the default's hela runs,
# seeds 0 / 1 (default_hela.txt); tmpfawfzl0c / tmpgc1zi2eg are batch_norm=True's (batch_norm.txt).
P=.venv/bin/python
# cells3d_s1_lr*.txt came from length_study.py (its own table format); levers_study.py --set lr=0.002 runs the same
$P benchmarks/length_study.py default --sets cells3d --logs benchmarks/results_length --max-time 180 --seed 1 --lr 0.002
$P benchmarks/length_study.py default --sets cells3d --logs benchmarks/results_length --max-time 180 --seed 1 --lr 0.003
$P benchmarks/levers_study.py --sets cells3d --seeds 1 --set batch_norm=True               # patch96_batch8_bn_*.txt
$P benchmarks/levers_study.py --sets cells3d --seeds 1 --set patch_size=96 --set steps_per_epoch=356
$P benchmarks/levers_study.py --sets cells3d --seeds 1 --set batch_size=8 --set steps_per_epoch=100
$P benchmarks/levers_study.py --sets hela cho bbbc007 cells3d --seeds 0 1 --set batch_norm=True --cross  # batch_norm.txt (not cells3d seed 1: above)
$P benchmarks/levers_study.py --sets hela --seeds 0 1 --cross                             # default_hela.txt, other_microscopes.txt
$P benchmarks/levers_study.py --sets bbbc007 --seeds 0 --group-norm                       # group_norm.txt
$P benchmarks/levers_study.py --sets cells3d --seeds 1 --group-norm
$P benchmarks/levers_study.py --sets cells3d --seeds 1 --scale-augment                    # scale_augment_first.txt
$P benchmarks/levers_study.py --sets hela --seeds 0 --scale-augment --cross
$P benchmarks/levers_study.py --sets cho bbbc007 cells3d --seeds 0 --scale-augment        # scale_augment_seed0.txt
# cells3d's 40-epoch runs with the present default (128 px, 200 steps), seeds 1 and 0:
$P benchmarks/length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --seed 1 --logs benchmarks/results_length_128
$P benchmarks/length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_length_128
# The percentiles and foreground means of cells3d's halves (cells3d_intensities.txt):
$P benchmarks/levers_study.py --intensities cells3d > benchmarks/results_levers/cells3d_intensities.txt
# 2026-12-05, later: torch.compile, and the upper percentile of the normalisation. The upper99_* files were
# made with a study-only flag, levers_study.py --upper-percentile 99, which set training's Normalization(high=99);
# the option --upper-percentile (TrainConfig.upper_percentile) that replaced it does the same: --set upper_percentile=99
rm -rf /tmp/torchinductor_$USER; $P benchmarks/compile_study.py --rounds 3 --repeats 7     # compile.txt (compile_first.txt: the defaults, warm cache)
$P benchmarks/levers_study.py --percentiles                                                # percentiles.txt
$P benchmarks/levers_study.py --sets cells3d --seeds 0 1 --set upper_percentile=99             # upper99_cells3d.txt
$P benchmarks/levers_study.py --sets hela --seeds 0 --set upper_percentile=99 --cross          # upper99_hela.txt
$P benchmarks/levers_study.py --sets bbbc007 cho --seeds 0 --set upper_percentile=99           # upper99_bbbc007_cho.txt
$P benchmarks/levers_study.py --sets hela cho bbbc007 --seeds 1 --set upper_percentile=99     # upper99_seed1.txt
# the 40-epoch yardsticks of hela, cho and bbbc007 with the present default (128 px, 200 steps), seed 0:
# benchmarks/results_length_128/long_{hela,cho,bbbc007}_seed0.txt, then rules.txt
$P benchmarks/length_study.py long --sets hela --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_length_128
$P benchmarks/length_study.py long --sets cho --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_length_128
$P benchmarks/length_study.py long --sets bbbc007 --patch-size 128 --steps-per-epoch 200 --seed 0 --logs benchmarks/results_length_128
$P benchmarks/length_study.py rules --logs benchmarks/results_length_128 > benchmarks/results_length_128/rules.txt
# the swap's result again with the option (the same 0.9673):
$P benchmarks/levers_study.py --sets cells3d --seeds 0 --set upper_percentile=99 > benchmarks/results_levers/upper99_cells3d_option.txt
# 2026-12-05, third session: the seed-1 yardsticks of hela, cho and bbbc007 (128 px, 200 steps), one after the other,
# the first beside the test suite for part of its epochs (the Dice does not depend on the load), then the rules again:
$P benchmarks/length_study.py long --sets hela --patch-size 128 --steps-per-epoch 200 --seed 1 --logs benchmarks/results_length_128 > benchmarks/results_length_128/long_hela_seed1.txt
$P benchmarks/length_study.py long --sets cho --patch-size 128 --steps-per-epoch 200 --seed 1 --logs benchmarks/results_length_128 > benchmarks/results_length_128/long_cho_seed1.txt
$P benchmarks/length_study.py long --sets bbbc007 --patch-size 128 --steps-per-epoch 200 --seed 1 --logs benchmarks/results_length_128 > benchmarks/results_length_128/long_bbbc007_seed1.txt
$P benchmarks/length_study.py rules --logs benchmarks/results_length_128 > benchmarks/results_length_128/rules.txt
# a higher learning rate at seed 0 (it had been measured at seed 1 only), quiet:
$P benchmarks/levers_study.py --sets cells3d hela --seeds 0 --set lr=0.002 > benchmarks/results_levers/lr0.002_seed0.txt
# 40 epochs with the 99th percentile (cells3d, seed 0), in a folder of its own:
$P benchmarks/length_study.py long --sets cells3d --patch-size 128 --steps-per-epoch 200 --seed 0 --upper-percentile 99 --logs benchmarks/results_length_128_upper99 > benchmarks/results_length_128_upper99/long_cells3d_seed0.txt
$P benchmarks/length_study.py rules --logs benchmarks/results_length_128_upper99 > benchmarks/results_length_128_upper99/rules.txt
