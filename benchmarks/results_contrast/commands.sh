# Twenty-first session, 2026-12-07 (BENCHMARKS.md, "Which cells 1,000 steps miss, and contrast augmentation").
# 2-core AMD EPYC Zen 4, no AMX, torch 2.13.0+cpu, bf16 autocast. Run from the repository root.
B=~/.cache/unetkit-study/sets/bacteria        # python benchmarks/public_data.py builds it

# 1. Which cells does the default's 1,000-step model miss at seed 2? (two torch threads, beside other work)
unetkit train $B/train --instance-masks --seed 2 --epochs 5 --schedule warmup-constant --out /tmp/ea_s2
unetkit predict /tmp/ea_s2/best.pt $B/test/images --out /tmp/eap_ea_s2
#    against the default run that decided its own length at seed 2 (17 epochs; "Patience 5 by default"):
unetkit train $B/train --instance-masks --seed 2 --out /tmp/bact_default_s2
unetkit predict /tmp/bact_default_s2/best.pt $B/test/images --out /tmp/eap_bact_default_s2
python benchmarks/results_contrast/missed_cells.py /tmp/eap_ea_s2 /tmp/eap_bact_default_s2 > benchmarks/results_contrast/missed_cells.txt

# 2. Contrast augmentation (study only: contrast.diff adds the preset "gamma-noise-contrast": the default
#    gamma-noise, and half the patches' contrast multiplied by 0.25 to 1 around the patch mean), one torch thread per
#    run, two side by side, in a worktree with the diff applied:
#      git worktree add /tmp/wt_contrast -b study-contrast && (cd /tmp/wt_contrast && git apply PATH/TO/contrast.diff)
cd benchmarks
run() {  # set, seed
    PYTHONPATH=/tmp/wt_contrast/src OMP_NUM_THREADS=1 python selection_study.py --set $1 --seed $2 --epochs 5 \
        --change augment=gamma-noise-contrast --out results_contrast
}
run bacteria 2 & run bacteria 0 & wait
# (the planned runs of bacteria 1, BBBC007 0, HeLa 0 and cells3d 1 were stopped: both bacteria seeds came out worse)
python selection_study.py --compare results_selection/epochs40 results_contrast > results_contrast/compare_default.md
