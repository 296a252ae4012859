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
    assert refused.returncode != 0 and "epochs40/set_seed0.json: the same run with different curves (from epoch 5)" in refused.stderr


def test_compare_keeps_the_longer_of_two_agreeing_logs_and_marks_a_run_short_of_1000_steps(tmp_path):
    write_curve(tmp_path / "before" / "set_seed0.json", [0.5, 0.6, 0.7, 0.8, 0.9])
    write_curve(tmp_path / "after" / "set_seed0.json", [0.6, 0.7, 0.8])  # cut after three epochs, sorts first
    write_curve(tmp_path / "after" / "epochs40" / "set_seed0.json", [0.6, 0.7, 0.8, 0.85, 0.95, 0.96, 0.97])
    write_curve(tmp_path / "before" / "short_seed0.json", [0.5, 0.6, 0.7, 0.8, 0.9])
    write_curve(tmp_path / "after" / "short_seed0.json", [0.6, 0.7])

    result = compare(tmp_path / "before", tmp_path / "after")
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0]: line for line in result.stdout.splitlines()}
    assert rows["| set_seed0"].endswith("| 0.9000 / 0.9500 | +0.0500 |")  # the 40-epoch log's five epochs
    assert rows["| short_seed0"].endswith("| 0.9000 / - | - |")  # no difference at 1,000 steps it never reached


def test_the_study_writes_its_curve_whole_after_every_epoch_and_replay_marks_a_cut_run(tmp_path, monkeypatch):
    import argparse

    monkeypatch.syspath_prepend(str(STUDY.parent))
    import selection_study

    args = argparse.Namespace(set="set", seed=1, epochs=40, out=tmp_path, change=[("weight_decay", 0.05)],
                              train_images=None)
    epochs = [{"epoch": 1, "val_dice": 0.5, "test_dice": 0.6}, {"epoch": 2, "val_dice": 0.7, "test_dice": 0.65}]
    selection_study.write_curve(args, epochs)
    assert [path.name for path in tmp_path.iterdir()] == ["set_seed1.json"]  # no .partial left behind
    logged = json.loads((tmp_path / "set_seed1.json").read_text())
    assert logged["planned_epochs"] == 40 and logged["changes"] == {"weight_decay": 0.05}  # --change, recorded
    assert logged["rules"][-1] == "last epoch: test Dice 0.6500" == selection_study.summary(args, epochs)[-1]
    table = selection_study.replay_table([tmp_path / "set_seed1.json"])
    assert "| set_seed1 (cut: 2 of 40 epochs) | all | 2 |" in "\n".join(table)


def test_without_validation_the_replay_stops_on_the_loss_and_keeps_the_last_epoch(monkeypatch):
    # a run on one training image has no validation score: unetkit's rule reads the training loss and best.pt holds
    # the last epoch's model; the study's replay must do the same, not crash or pretend validation chose
    monkeypatch.syspath_prepend(str(STUDY.parent))
    import selection_study

    losses = [0.5, 0.3, 0.299, 0.297, 0.295, 0.29, 0.2]
    epochs = [{"epoch": k + 1, "val_dice": None, "loss": loss, "test_dice": 0.8 + 0.01 * k} for k, loss in enumerate(losses)]
    assert selection_study.rule_stop(epochs, patience=3) == 5  # epochs 3 to 5 fell by under 2 % of 0.3
    assert selection_study.select(epochs[:4], margin=0.003) == 3
    with_validation = [dict(entry, val_dice=0.9 - 0.01 * k) for k, entry in enumerate(epochs)]
    assert selection_study.rule_stop(with_validation, patience=3) == 4 and selection_study.select(with_validation, 0) == 0
