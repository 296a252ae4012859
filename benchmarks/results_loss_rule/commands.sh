# Fifteenth session (2026-12-06): the loss rule (the stopping rule of a run without validation images), measured.
# From benchmarks/: three single-image runs side by side, one thread each (about 2 hours in all),
# every epoch's model (the moving average, what best.pt keeps without validation) scored on the set's test images.
# All three ran their 40 epochs (about 2 hours side by side).
P=../.venv/bin/python
OMP_NUM_THREADS=1 $P selection_study.py --set hela --train-images hela0.tif --seed 0 --epochs 40 --out results_loss_rule &
OMP_NUM_THREADS=1 $P selection_study.py --set bacteria --train-images trpl12.tif --seed 0 --epochs 40 --out results_loss_rule &
OMP_NUM_THREADS=1 $P selection_study.py --set bbbc007 --train-images A9_p5d.tif --seed 0 --epochs 40 --out results_loss_rule &
wait
# seconds: every patience x relative drop replayed on those curves, and where each would end the 40-epoch
# several-image curves of results_length_128 (from their training loss)
$P results_loss_rule/loss_rule_replay.py > results_loss_rule/loss_rule_replay.md
