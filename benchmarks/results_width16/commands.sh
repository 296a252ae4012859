# Sixteenth session (2026-12-06): the narrower network (--base-width 16, a quarter of the reference's parameters)
# with today's defaults, every epoch's model scored on the set's test images. From benchmarks/: two queues side
# by side, one torch thread each.
P=../.venv/bin/python
run() { OMP_NUM_THREADS=1 $P selection_study.py --set "$1" --seed "$2" --epochs 15 --change base_width=16 --out results_width16; }
(run bacteria 1; run bacteria 0; run hela 0; run cells3d 0) > results_width16/queue_a.log 2>&1 &
(run bacteria 2; run bbbc007 0; run cho 0) > results_width16/queue_b.log 2>&1 &
wait
# (queue b's bbbc007 and cho runs were stopped after the bacteria's, to free a core for results_trainall/)
# a step's time at base widths 32 / 24 / 16 (two threads, alone on the machine):
$P results_width16/step_time.py 2
# the tables: what best.pt keeps after 1,000 / 2,000 / 3,000 steps, and the rule, against the reference's 40 epochs
$P results_width16/width16_replay.py --curves results_width16 results_trainall > results_width16/width16_replay.md
