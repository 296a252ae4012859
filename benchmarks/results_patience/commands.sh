# Thirteenth session (2026-12-06), from benchmarks/: the bacteria's 40 epochs at seeds 1 and 2 (PyTorch's default start,
# every epoch's model scored on the test frames), two side by side, one thread each (~70 min)
P=../.venv/bin/python
for seed in 1 2; do OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --seed $seed --epochs 40 --out results_selection/epochs40 & done
wait
# seconds: what each margin keeps where the rule ends each bacteria run, after 1,000 steps and after 40 epochs
$P selection_study.py --replay results_selection/epochs40/bacteria_seed{0,1,2}.json > results_patience/replay_bacteria_40.md
# seconds: the rule with patience 3 to 10 replayed on the five 40-epoch curves of results_selection/epochs40
$P results_patience/patience_replay.py > results_patience/patience_replay.md
# seconds: patience 2 to 5 on the crowded sets' 40-epoch logs of the seventh and eighth sessions (test Dice of the best epoch)
$P length_study.py rules --logs results_yardsticks/length > results_patience/rules_crowded_sets.md

# Fourteenth session (2026-12-06), patience 5 the default for pixels. From the repository root:
# the sample's default run, alone, two threads (the README's figure), then its held-out frames
.venv/bin/unetkit train --out /tmp/sample_default --no-progress
.venv/bin/unetkit evaluate /tmp/sample_default/best.pt sample:heldout --csv benchmarks/results_patience/sample_default/heldout_scores.csv
# where each patience ends that run (seconds)
(cd benchmarks && ../.venv/bin/python results_patience/patience_replay.py --logs results_patience/sample_default/log.csv)
# real default runs on the bacteria at seeds 1 and 2, one thread each, side by side (~40 min; their curves
# repeat the 40-epoch curves of results_selection/epochs40 step for step), scored on the test frames
B=~/.cache/unetkit-study/sets/bacteria
for s in 1 2; do OMP_NUM_THREADS=1 .venv/bin/unetkit train $B/train --instance-masks --seed $s --out /tmp/bact_default_s$s --no-progress & done; wait
for s in 1 2; do .venv/bin/unetkit evaluate /tmp/bact_default_s$s/best.pt $B/test --csv benchmarks/results_patience/bacteria_default_seed$s.csv; done
# a 40-epoch yardstick of today's default on HeLa (the sample's frames), one thread (~70 min beside other runs)
(cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python selection_study.py --set hela --seed 0 --epochs 40 --out results_selection/epochs40)
(cd benchmarks && ../.venv/bin/python results_patience/patience_replay.py > results_patience/patience_replay.md)
