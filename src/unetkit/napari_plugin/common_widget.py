"""Qt parts that both widgets use: a layer chooser and the way errors reach the user.

Needs a display (Qt); see ``tests/napari`` for how it is tested under Xvfb.
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QLabel, QSpinBox, QWidget

from ..errors import UnetkitError

if TYPE_CHECKING:
    import napari


def error_message(error: BaseException) -> str:
    """What the user reads: unetkit's own errors as they are (file, problem, fix), others with their type.

    >>> error_message(ValueError("bad"))
    'unexpected error (ValueError): bad'
    """
    if isinstance(error, UnetkitError):
        return str(error)
    return f"unexpected error ({type(error).__name__}): {error}"


def show_error(status: QLabel, error: BaseException) -> str:
    """Put the message in ``status`` (red) and in a napari notification; returns the message.

    An error that is not unetkit's (a bug) also prints its traceback to stderr, for a report.
    """
    from napari.utils.notifications import show_error as notify

    message = error_message(error)
    if not isinstance(error, UnetkitError):
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    status.setStyleSheet("color: #e0605f")
    status.setText(message)
    notify(message)
    return message


def status_label(lines: int = 3) -> QLabel:
    """A word-wrapping label with room for ``lines`` lines, whose text can be selected and copied."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setMinimumHeight(label.fontMetrics().lineSpacing() * lines + 4)
    return label


def typed_path(text: str) -> str:
    """A path as typed or pasted: without surrounding spaces and quotes (a file manager's "Copy as path" adds them).

    >>> typed_path(' "C:/runs/a/best.pt" ')
    'C:/runs/a/best.pt'
    """
    text = text.strip()
    return text[1:-1].strip() if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'" else text


def show_status(status: QLabel, text: str) -> None:
    status.setStyleSheet("")
    status.setText(text)


class LayerChoice(QComboBox):
    """The viewer's layers of one type, kept up to date; follows the viewer's selected layer."""

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent: QWidget | None = None):
        super().__init__(parent)
        self._viewer = viewer
        self._layer_type = layer_type
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.selection.events.active.connect(self._follow_selection)
        self.refresh()

    def layers(self) -> list[Any]:
        return [layer for layer in self._viewer.layers if isinstance(layer, self._layer_type)]

    def current_layer(self) -> Any | None:
        """The chosen layer (None when the viewer has none of this type)."""
        return self.currentData()

    def set_layer(self, layer: Any) -> None:
        index = next((i for i in range(self.count()) if self.itemData(i) is layer), -1)
        if index >= 0:
            self.setCurrentIndex(index)

    def refresh(self, event: Any = None) -> None:
        """List the layers again; keep the chosen one if it is still there, else the selected or newest."""
        chosen = self.current_layer()
        layers = self.layers()
        self.blockSignals(True)
        self.clear()
        for layer in layers:
            self.addItem(layer.name, layer)
        self.blockSignals(False)
        active = self._viewer.layers.selection.active
        present = {id(layer) for layer in layers}
        keep = next((layer for layer in (chosen, active) if id(layer) in present), layers[-1] if layers else None)
        if keep is not None:
            self.set_layer(keep)
        if keep is not chosen:
            self.currentIndexChanged.emit(self.currentIndex())

    def showPopup(self) -> None:  # noqa: N802 (Qt's name): renamed layers show their new names
        self.refresh()
        super().showPopup()

    def _follow_selection(self, event: Any = None) -> None:
        active = self._viewer.layers.selection.active
        if isinstance(active, self._layer_type):
            self.set_layer(active)


def spin_box(low: int, high: int, value: int, step: int = 1, tip: str = "") -> QSpinBox:
    """An integer box with its range set before its value (so the value is never clamped)."""
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box
