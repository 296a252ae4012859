# The commands behind BENCHMARKS.md "The default since 2026-12-04" (run from the repository root,
# 2-core AMD EPYC Zen 4, no AMX, torch 2.13.0+cpu); each *.txt here is one step's output.
# The second 'evaluate' of 2_inst*.txt refused to overwrite its CSV: 8_inst*_all.txt are those scores.
# Issue 16: evidence for the 128-px / 200-step default. Sequential, quiet machine.
U=.venv/bin/unetkit
P="--patch-size 128 --steps-per-epoch 200"
R=/tmp/m/runs; rm -rf $R; mkdir -p $R
t() { local s=$(date +%s.%N); "$@"; local e=$(date +%s.%N); echo "WALL $(echo "$e - $s" | bc) :: $*"; }
# 1. README first command (3 min budget), new settings, seed 0
t bash -c "$U train --out $R/readme --max-time 3m $P --no-progress && $U predict $R/readme/best.pt sample:heldout --out $R/readme/heldout --no-progress && $U evaluate $R/readme/best.pt sample:heldout" > /tmp/m/1_readme.txt 2>&1
# 2. sample instance default runs, 3 seeds
for S in 0 1 2; do
  t $U train --task instances --seed $S --out $R/inst$S $P --no-progress > /tmp/m/2_inst$S.txt 2>&1
  $U evaluate $R/inst$S/best.pt sample:heldout --ignore-border-objects >> /tmp/m/2_inst$S.txt 2>&1
  $U evaluate $R/inst$S/best.pt sample:heldout >> /tmp/m/2_inst$S.txt 2>&1
done
# 3. four public sets, 3-minute budget, seed 1
t .venv/bin/python benchmarks/length_study.py default --sets hela cells3d cho bbbc007 --logs benchmarks/results_length --max-time 180 $P --seed 1 > /tmp/m/3_budget_seed1.txt 2>&1
# 4. sample semantic default (rule) run, seed 0
t bash -c "$U train --out $R/rule $P --no-progress && $U evaluate $R/rule/best.pt sample:heldout" > /tmp/m/4_rule.txt 2>&1
# 5. four public sets, the rule, seed 1, quiet
t .venv/bin/python benchmarks/length_study.py default --sets cho bbbc007 cells3d hela --logs benchmarks/results_length $P --seed 1 > /tmp/m/5_rule_seed1.txt 2>&1
# 6. cells3d's 3-minute run of step 3 again, the machine quiet (step 3's ran beside tests)
.venv/bin/python benchmarks/length_study.py default --sets cells3d --logs benchmarks/results_length --max-time 180 $P --seed 1 > /tmp/m/6_cells3d_budget_seed1_quiet.txt 2>&1
# 7. the same seed with the 256-px patches of before (then the default: the flags were not given)
.venv/bin/python benchmarks/length_study.py default --sets cells3d hela --logs benchmarks/results_length --max-time 180 --seed 1 --patch-size 256 --steps-per-epoch 50 > /tmp/m/7_budget256_seed1.txt 2>&1
# 8. the instance runs on every labelled object
for S in 0 1 2; do .venv/bin/unetkit evaluate /tmp/m/runs/inst$S/best.pt sample:heldout --csv /tmp/m/inst$S-all.csv > /tmp/m/8_inst${S}_all.txt 2>&1; done
