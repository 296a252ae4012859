"""The training log: one CSV row per epoch, and a training-curve PNG redrawn each epoch.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> append_row(run / "log.csv", {"epoch": 1, "loss": 0.5, "val_dice": 0.8})
>>> read_rows(run / "log.csv")[0]["val_dice"]
'0.8'
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..data.io import atomic_write

FIELDS = ("epoch", "step", "loss", "val_dice", "val_iou", "lr", "seconds", "data_wait")


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(target: Path) -> None:
        with open(target, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write, overwrite=True)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Add one epoch's row (the file is rewritten atomically: small, and never torn)."""
    _write_rows(path, read_rows(path) + [row])


def truncate_after(path: Path, epoch: int) -> None:
    """Drop rows of epochs after ``epoch`` (a resumed run redoes them)."""
    rows = read_rows(path)
    kept = [r for r in rows if int(r["epoch"]) <= epoch]
    if len(kept) != len(rows):
        _write_rows(path, kept)


def plot_curves(log_path: Path, png_path: Path) -> None:
    """Loss and validation Dice/IoU against epochs, as a PNG.

    Drawn on a plain ``Figure``, not through pyplot: no global backend switch and no figure
    registry, so training in a GUI's worker thread (napari) leaves the GUI's plots alone.
    """
    from matplotlib.figure import Figure

    rows = read_rows(log_path)
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    figure = Figure(figsize=(9, 3.5))
    loss_axis, score_axis = figure.subplots(1, 2)
    loss_axis.plot(epochs, [float(r["loss"]) for r in rows], marker="o")
    loss_axis.set(xlabel="epoch", ylabel="training loss", title="loss")
    for name in ("val_dice", "val_iou"):
        values = [float(r[name]) if r.get(name) not in (None, "") else float("nan") for r in rows]
        score_axis.plot(epochs, values, marker="o", label=name.replace("val_", "validation "))
    score_axis.set(xlabel="epoch", ylim=(0, 1), title="validation")
    score_axis.legend()
    figure.tight_layout()
    atomic_write(png_path, lambda target: figure.savefig(target, format="png", dpi=90), overwrite=True)
