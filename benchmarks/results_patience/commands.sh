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
