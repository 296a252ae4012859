# 2026-12-05, fourth session; 2-core AMD EPYC Zen 4; one torch thread, beside training runs (Dice does not depend on load).
# The checkpoints are runs of the levers and length studies (their run directories; not committed):
# 3-minute runs, seed 0, the 99.8th (default) and the 99th:
#   hela: levers_study.py --sets hela --seeds 0 [--set upper_percentile=99]; cho: the same with --sets cho
python benchmarks/sparse_study.py --pair cho CHO_99.8/best.pt CHO_99/best.pt --pair hela HELA_99.8/best.pt HELA_99/best.pt > benchmarks/results_sparse/upper99_3min_hela_cho.txt
# 40-epoch runs of cells3d, seed 0 (length_study.py long ... --logs results_length_128, and ... --upper-percentile 99):
python benchmarks/sparse_study.py --pair cells3d C_99.8/best.pt C_99/best.pt [--side 96] > benchmarks/results_sparse/upper99_40epochs_cells3d.txt
