"""The evaluation report in the browser: one self-contained HTML file (:func:`write_report`).

:mod:`~unetkit.report.pictures` draws each image's errors (pixel by pixel by default; a task
may supply object masks), :mod:`~unetkit.report.run_info` reads the run's settings and
curves, and :mod:`~unetkit.report.page` assembles the page.

>>> import tempfile
>>> from pathlib import Path
>>> from unetkit import UNet, evaluate_checkpoint, make_checkpoint, save_checkpoint
>>> folder = Path(tempfile.mkdtemp())
>>> save_checkpoint(folder / "model.pt", make_checkpoint(UNet(depth=2, base_width=2)))
>>> report = evaluate_checkpoint(folder / "model.pt", "sample:heldout", precision="fp32", pictures=2)
>>> write_report(report, folder / "report.html")
>>> sorted(report.pictures), (folder / "report.html").stat().st_size < 2_000_000
([0, 1], True)
"""

from .page import report_html, score_columns, write_report
from .pictures import ErrorMasks, ImagePictures, WorstImagePictures, error_picture, image_pictures, pixel_errors

__all__ = [
    "ErrorMasks", "ImagePictures", "WorstImagePictures", "error_picture", "image_pictures", "pixel_errors",
    "report_html", "score_columns", "write_report",
]
