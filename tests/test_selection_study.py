"""benchmarks/selection_study.py's tables, from curves written before (no training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "selection_study.py"


def write_curve(path: Path, test_dice: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = [{"epoch": k + 1, "val_dice": 0.5 + 0.01 * k, "test_dice": dice} for k, dice in enumerate(test_dice)]
    path.write_text(json.dumps({"epochs": epochs, "rules": []}))


def compare(before: Path, after: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STUDY), "--compare", str(before), str(after)],
                          capture_output=True, text=True, timeout=120, cwd=STUDY.parent)


def test_compare_takes_a_run_logged_twice_when_its_curves_agree_and_refuses_it_when_they_do_not(tmp_path):
    write_curve(tmp_path / "before" / "set_seed0.json", [0.5, 0.6, 0.7, 0.8, 0.9])
    five = [0.6, 0.7, 0.8, 0.85, 0.95]
    write_curve(tmp_path / "after" / "set_seed0.json", five)
    write_curve(tmp_path / "after" / "epochs40" / "set_seed0.json", five + [0.96, 0.97])  # the same run, longer

    agreed = compare(tmp_path / "before", tmp_path / "after")
    assert agreed.returncode == 0, agreed.stderr
    row = next(line for line in agreed.stdout.splitlines() if line.startswith("| set_seed0 |"))
    assert "0.9000 / 0.9500" in row and row.endswith("| +0.0500 |")

    write_curve(tmp_path / "after" / "epochs40" / "set_seed0.json", [0.6, 0.7, 0.8, 0.85, 0.94, 0.96])
    refused = compare(tmp_path / "before", tmp_path / "after")
    assert refused.returncode != 0 and "set_seed0.json logged twice with different curves" in refused.stderr
