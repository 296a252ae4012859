"""The training log: one CSV row per epoch, a training-curve PNG redrawn each epoch, and
``result.json`` (why the run ended) written when it ends.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> append_row(run / "log.csv", {"epoch": 1, "loss": 0.5, "val_dice": 0.8})
>>> read_rows(run / "log.csv")[0]["val_dice"]
'0.8'
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.io import atomic_write
from ..errors import ConfigError

LOG = "log.csv"
CONFIG = "config.json"
CURVE = "curves.png"
RESULT = "result.json"
FIELDS = ("epoch", "step", "loss", "val_dice", "val_iou", "val_f1", "val_ap50", "min_object_size", "best", "kept_step", "lr",
          "seconds", "data_wait", "note")


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


class EpochLog:
    """``log.csv`` and ``curves.png`` of a run, a row added after every epoch. A log that another program
    holds open (Excel locks a CSV it shows, on Windows) is said once, not an error that ends the run: its rows
    are kept and written with the next epoch's (:meth:`close` tries a last time at the run's end).

    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> log = EpochLog(run, report=print)
    >>> log.add({"epoch": 1, "step": 200, "loss": 0.5})
    >>> len(read_rows(run / LOG)), (run / CURVE).is_file()
    (1, True)
    """

    def __init__(self, run_dir: Path, report: Callable[[str], None]):
        self.path, self.curves, self.report = run_dir / LOG, run_dir / CURVE, report
        self.unwritten: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.unwritten.append(row)
        try:
            self._write()
        except PermissionError as error:  # another program's lock: what it kept out is written after the next epoch
            if not self.unwritten:
                self.report(f"warning: {self.curves} cannot be written ({error.strerror or error}; open in another "
                            "program?): drawn again after the next epoch")
            elif len(self.unwritten) == 1:
                self.report(f"warning: {self.path} cannot be written ({error.strerror or error}; open in another "
                            "program?): its rows are kept and written after the next epoch")

    def close(self) -> None:
        """Write the rows still kept, or say which epochs the log lacks (last.pt and result.json hold the run)."""
        if not self.unwritten:
            return
        try:
            self._write()
        except OSError as error:  # any: close runs in run()'s finally, where raising would hide the error ending it
            epochs = ", ".join(str(row.get("epoch")) for row in self.unwritten)
            self.report(f"warning: {self.curves} could not be written ({error.strerror or error})" if not self.unwritten
                        else f"warning: {self.path} could not be written ({error.strerror or error}): it lacks the "
                             f"rows of epoch(s) {epochs}")

    def _write(self) -> None:
        """The kept rows after the log's, then the curves; raises what the file system raises."""
        _write_rows(self.path, read_rows(self.path) + self.unwritten)
        self.unwritten.clear()
        plot_curves(self.path, self.curves)


def check_rows(path: Path) -> None:
    """Raise :class:`~unetkit.errors.ConfigError` naming ``log.csv`` and the line if a row's epoch, step or loss is
    not a number (a hand-edited log): a resume checks it before it changes anything, since it redraws the curves
    from the log and cuts it back to the checkpoint's epoch.

    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "log.csv"
    >>> append_row(log, {"epoch": 1, "step": 200, "loss": 0.5})
    >>> check_rows(log)
    >>> _ = log.open("a").write("my notes,,,\\n")
    >>> try:
    ...     check_rows(log)
    ... except ConfigError as error:
    ...     print(error.problem)
    line 3: 'my notes' where the epoch's number was expected (the log was edited?)
    """
    for line, row in enumerate(read_rows(path), start=2):  # line 1 is the header
        for column in ("epoch", "step", "loss"):
            value = row.get(column) or ""
            try:
                float(value)
            except ValueError:
                raise ConfigError(
                    f"line {line}: {value!r} where the {column}'s number was expected (the log was edited?)",
                    path=path, fix="remove or mend that line: log.csv is unetkit's record of the run, one row an "
                                   "epoch (keep notes in another file)") from None


def note_last_row(path: Path, note: str) -> None:
    """Set why the run stopped in the last row's note (a resume that ends the run at once: the last row says why, as
    result.json does), in place of an earlier stop's reason.

    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "log.csv"
    >>> append_row(log, {"epoch": 1, "step": 200, "loss": 0.5})
    >>> append_row(log, {"epoch": 2, "step": 400, "loss": 0.4, "note": "plateau: learning rate x0.5"})
    >>> note_last_row(log, "stopped: no validation improvement above 0.003 for 1 epochs")
    >>> read_rows(log)[-1]["note"]
    'plateau: learning rate x0.5; stopped: no validation improvement above 0.003 for 1 epochs'
    """
    _replace_in_last_note(path, "stopped:", note)  # "plateau: ..." stays; an earlier stop's reason gives way


def time_limit_reason(max_time_s: float) -> str:
    """Why a run that spent its time budget stopped, in words (result.json's ``why``; a log note after "stopped: ").

    >>> time_limit_reason(180.0)
    'time limit of 180 s reached'
    """
    return f"{TIME_LIMIT} of {max_time_s:g} s reached"


TIME_LIMIT = "time limit"


def drop_time_limit_note(path: Path) -> None:
    """Take a time limit's reason off the last row's note: a resume trains on past an epoch whose end the budget
    ended the run at, which so is not where the run stopped, as in the log of a run never cut.

    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "log.csv"
    >>> append_row(log, {"epoch": 1, "step": 200, "loss": 0.5, "note": "stopped: time limit of 60 s reached"})
    >>> drop_time_limit_note(log)
    >>> read_rows(log)[-1]["note"]
    ''
    """
    _replace_in_last_note(path, f"stopped: {TIME_LIMIT}", None)


def _replace_in_last_note(path: Path, prefix: str, note: str | None) -> None:
    """The last row's note without its parts (joined by "; ") that start with ``prefix``, and ``note`` added; the
    log is rewritten only where that changes it."""
    rows = read_rows(path)
    if not rows:
        return
    before = rows[-1].get("note") or ""
    kept = [part for part in before.split("; ") if part and not part.startswith(prefix)]
    after = "; ".join(kept + ([note] if note else []))
    if after != before:
        rows[-1]["note"] = after
        _write_rows(path, rows)


def missing_epochs(path: Path, epoch: int) -> list[int]:
    """Epochs 1 to ``epoch`` that have no row in the log (a run killed while the log was locked kept them only in
    memory)."""
    present = {int(row["epoch"]) for row in read_rows(path) if (row.get("epoch") or "").strip().isdigit()}
    return [number for number in range(1, epoch + 1) if number not in present]


def truncate_after(path: Path, epoch: int) -> None:
    """Drop rows of epochs after ``epoch`` (a resumed run redoes them)."""
    rows = read_rows(path)
    kept = [r for r in rows if int(r["epoch"]) <= epoch]
    if len(kept) != len(rows):
        _write_rows(path, kept)


def write_result(path: Path, summary: dict[str, Any]) -> None:
    """Write how the run ended (replaced when a resumed run ends again)."""
    text = json.dumps(summary, indent=2)
    atomic_write(path, lambda target: target.write_text(text), overwrite=True)


def plot_curves(log_path: Path, png_path: Path) -> None:
    """Loss and validation Dice/IoU against epochs, as a PNG (nothing while the log is empty)."""
    rows = read_rows(log_path)
    if rows:
        png = curves_png(rows)
        atomic_write(png_path, lambda target: target.write_bytes(png), overwrite=True)


def curves_png(rows: list[dict[str, str]], dpi: int = 90) -> bytes:
    """The PNG of :func:`plot_curves` for log rows (of :func:`read_rows`), as bytes.

    Drawn on a plain ``Figure``, not through pyplot: no global backend switch and no figure
    registry, so training in a GUI's worker thread (napari) leaves the GUI's plots alone.
    Raises ValueError for a row whose epoch or loss is not a number.

    >>> curves_png([{"epoch": "1", "loss": "0.5", "val_dice": "0.8", "val_iou": ""}])[:4]
    b'\\x89PNG'
    """
    import io

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r["epoch"]) for r in rows]
    losses = [float(r["loss"]) for r in rows]
    figure = Figure(figsize=(9, 3.5))
    loss_axis, score_axis = figure.subplots(1, 2)
    loss_axis.plot(epochs, losses, marker="o")
    loss_axis.set(xlabel="epoch", ylabel="training loss", title="loss")
    for name in ("val_dice", "val_iou", "val_f1", "val_ap50"):
        values = [float(r[name]) if r.get(name) not in (None, "") else float("nan") for r in rows]
        if not all(np.isnan(values)):
            score_axis.plot(epochs, values, marker="o", label=name.replace("val_", "validation "))
    score_axis.set(xlabel="epoch", ylim=(0, 1), title="validation")
    if score_axis.get_legend_handles_labels()[0]:
        score_axis.legend()
    else:
        score_axis.text(0.5, 0.5, "no validation images", ha="center", va="center", transform=score_axis.transAxes)
    for axis in (loss_axis, score_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
