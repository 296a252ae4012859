"""Doctest collection under src/: the napari plugin's Qt modules import only with the napari extra.

Without it (``pip install -e ".[napari]"``), ``unetkit/napari_plugin/*_widget.py`` are not
collected; the rest of the plugin (its work, without Qt) is. This file is not installed.
"""

from __future__ import annotations


def _qt_and_napari_import() -> bool:
    try:
        import napari.viewer  # noqa: F401  (napari.viewer: "napari" alone may find tests/napari)
        import qtpy.QtCore  # noqa: F401  (a Qt binding is installed)
    except ImportError:
        return False
    return True


collect_ignore_glob = [] if _qt_and_napari_import() else ["unetkit/napari_plugin/*_widget.py"]
