"""A live training curve: loss and validation Dice per epoch, drawn by matplotlib in Qt.

It is fed the rows that :func:`unetkit.train` passes to ``on_epoch`` (``log.csv``'s
columns, as strings). matplotlib is a dependency of unetkit already; its ``qtagg``
canvas draws into the widget. Needs a display (Qt).
"""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QWidget


def _value(row: dict[str, str], key: str) -> float:
    text = row.get(key, "")
    return float(text) if text not in ("", None) else math.nan


class TrainingCurve(FigureCanvasQTAgg):
    """Training loss (left axis) and validation Dice (right axis, 0 to 1) against epochs."""

    def __init__(self, parent: QWidget | None = None):
        figure = Figure(figsize=(3.6, 2.2), dpi=90, layout="constrained")
        super().__init__(figure)
        self.setParent(parent)
        self.setMinimumHeight(170)
        self.rows: list[dict[str, str]] = []
        self.loss_axis = figure.add_subplot()
        self.dice_axis = self.loss_axis.twinx()
        (self.loss_line,) = self.loss_axis.plot([], [], "o-", color="tab:blue", label="loss")
        (self.dice_line,) = self.dice_axis.plot([], [], "s-", color="tab:orange", label="validation Dice")
        self.loss_axis.set_xlabel("epoch")
        self.loss_axis.set_ylabel("loss", color="tab:blue")
        self.dice_axis.set_ylabel("Dice", color="tab:orange")
        self.dice_axis.set_ylim(0, 1)
        self.loss_axis.legend(handles=[self.loss_line, self.dice_line], loc="center right", fontsize="small")

    def add_row(self, row: dict[str, str]) -> None:
        """One epoch's log row: a point on each line."""
        self.rows.append(dict(row))
        self._redraw()

    def clear(self) -> None:
        self.rows.clear()
        self._redraw()

    def _redraw(self) -> None:
        epochs = [int(row["epoch"]) for row in self.rows]
        self.loss_line.set_data(epochs, [_value(row, "loss") for row in self.rows])
        self.dice_line.set_data(epochs, [_value(row, "val_dice") for row in self.rows])
        self.loss_axis.relim()
        self.loss_axis.autoscale_view()
        if epochs:
            self.loss_axis.set_xlim(0.5, max(epochs) + 0.5)
        self.draw_idle()
