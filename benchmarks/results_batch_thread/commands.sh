#!/usr/bin/env bash
# Batches made in a thread beside the training steps, or in the training thread (2026-12-07): one default epoch each
# way, alternated; two torch threads on the 2-core AMD EPYC (Zen 4, avx512_bf16, no AMX), torch 2.13.0+cpu, bf16,
# the machine otherwise quiet, one after the other. Output: results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ab() { OMP_NUM_THREADS=2 ../.venv/bin/python results_batch_thread/batch_thread_ab.py "$@" 2>&1 | grep -v Warning; }
{ ab bacteria 16 4; ab hela 32 3; ab hela 32 3 --task instances; } > results_batch_thread/results.txt
