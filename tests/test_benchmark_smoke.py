"""The benchmark runs end to end in --quick mode and reports positive figures for every contender."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.mark.slow
def test_quick_benchmark_reports_every_measure(tmp_path):
    subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(tmp_path / "r.json")],
                   check=True, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["header"]["forward GFLOP per 256x256 image"] > 1
    fast = report["results"]["unetkit-fast"]
    assert fast["train b2 32px img/s"] > 0 and fast["infer 64px img/s"] > 0
    tiled = report["tiling"]["unetkit 256px"]
    assert tiled["mpix_per_s"] > 0 and tiled["peak_rss_mib"] > 10 and tiled["overlap_factor"] >= 1
    assert "unetkit-fp32" in report["results"] and "milesial-unet" in report["results"]
