"""One row per object: where it is, how big, how bright, what shape; the ``_objects.csv`` table.

The label image and the image as read from its file (intensities in the file's own units,
not normalised) are read band by band, and each object's sums (pixels, coordinates and
their squares, intensities) are added up, so that an image larger than memory is measured
in bounded memory. The quantities are scikit-image's ``regionprops`` definitions (centroid,
bounding box with an exclusive end, mean and max intensity, ``equivalent_diameter_area``,
eccentricity from the second central moments); a test checks them against it.

Positions and sizes are in pixels. Where the image file records its pixel size, the table adds
the area, equivalent diameter and centroid in micrometres (``area_um2``, ...; below 1, to six
significant digits, so that nanometre pixels keep their areas), and ``eccentricity_physical``, that of the
object's physical shape (a round cell imaged with pixels twice as tall as wide is round, though
0.87 eccentric in pixels).

>>> labels = np.zeros((6, 8), np.uint16); labels[1:3, 1:4] = 1; labels[3:6, 5:8] = 2
>>> image = np.arange(48, dtype=np.uint16).reshape(6, 8)
>>> rows = measure_objects(labels, image)
>>> [(r["label"], r["area"], r["touches_border"]) for r in rows]
[(1, 6, False), (2, 9, True)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

COLUMNS = (
    "label", "area", "centroid_y", "centroid_x", "bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x",
    "mean_intensity", "max_intensity", "equivalent_diameter", "eccentricity", "touches_border",
)
#: added where the pixel size is known, in micrometres
CALIBRATED_COLUMNS = ("area_um2", "equivalent_diameter_um", "centroid_y_um", "centroid_x_um", "eccentricity_physical")


def object_columns(channels: int = 1, calibrated: bool = False) -> list[str]:
    """The table's columns: :data:`COLUMNS`, the intensities per channel for a multi-channel image
    (``mean_intensity_c0``, ...), and :data:`CALIBRATED_COLUMNS` where the pixel size is known.

    >>> object_columns(2, calibrated=True)[8:12], object_columns(2, calibrated=True)[-1]
    (['mean_intensity_c0', 'max_intensity_c0', 'mean_intensity_c1', 'max_intensity_c1'], 'eccentricity_physical')
    """
    columns: list[str] = []
    for name in COLUMNS:
        if name in ("mean_intensity", "max_intensity") and channels > 1:
            continue
        if name == "equivalent_diameter" and channels > 1:
            columns += [f"{kind}_intensity_c{c}" for c in range(channels) for kind in ("mean", "max")]
        columns.append(name)
    return columns + (list(CALIBRATED_COLUMNS) if calibrated else [])


class _Sums:
    """Per-object running sums, indexed by object id (grown as larger ids appear)."""

    def __init__(self, channels: int):
        self.channels = channels
        self.size = 0
        self.moments = np.zeros((0, 6))  # n, sum y, sum x, sum yy, sum xx, sum xy
        self.low = np.zeros((0, 2), np.int64)
        self.high = np.zeros((0, 2), np.int64)
        self.intensity_sum = np.zeros((0, channels))
        self.intensity_max = np.zeros((0, channels))

    def _grow(self, size: int) -> None:
        if size <= self.size:
            return
        extra = size - self.size
        self.moments = np.vstack([self.moments, np.zeros((extra, 6))])
        self.low = np.vstack([self.low, np.full((extra, 2), np.iinfo(np.int64).max)])
        self.high = np.vstack([self.high, np.full((extra, 2), -1)])
        self.intensity_sum = np.vstack([self.intensity_sum, np.zeros((extra, self.channels))])
        self.intensity_max = np.vstack([self.intensity_max, np.full((extra, self.channels), -np.inf)])
        self.size = size

    def add(self, labels: np.ndarray, image: np.ndarray, top: int) -> None:
        inside = labels > 0
        if not inside.any():
            return
        ids = labels[inside].astype(np.int64)
        self._grow(int(ids.max()) + 1)
        rows, cols = np.nonzero(inside)
        y, x = (rows + top).astype(np.float64), cols.astype(np.float64)
        for k, values in enumerate((np.ones_like(y), y, x, y * y, x * x, y * x)):
            self.moments[:, k] += np.bincount(ids, values, minlength=self.size)
        for axis, coordinate in enumerate((rows + top, cols)):
            np.minimum.at(self.low[:, axis], ids, coordinate)
            np.maximum.at(self.high[:, axis], ids, coordinate)
        pixels = image[inside].reshape(len(ids), -1).astype(np.float64)
        for c in range(self.channels):
            self.intensity_sum[:, c] += np.bincount(ids, pixels[:, c], minlength=self.size)
            np.maximum.at(self.intensity_max[:, c], ids, pixels[:, c])


def measure_objects(labels: Any, image: Any, band: int = 2048,
                    pixel_size: tuple[float, float, str] | None = None) -> list[dict[str, object]]:
    """Rows of :func:`object_columns` for every object of ``labels``. Both are ``(H, W)`` /
    ``(H, W[, C])`` arrays or array-likes read in bands of ``band`` rows. ``pixel_size``: ``(y, x,
    unit)`` as :func:`unetkit.data.chunked.pixel_size` reads it; in micrometres, it adds the
    calibrated columns.

    >>> labels = np.zeros((24, 64), np.uint16); labels[2:22, 2:62] = 1    # 20 rows of 60 pixels
    >>> row = measure_objects(labels, labels, pixel_size=(1.5, 0.5, "micrometer"))[0]
    >>> row["area"], row["area_um2"], row["eccentricity_physical"] < 0.05   # 30 x 30 micrometres: a square
    (1200, 900.0, True)
    >>> row["eccentricity"]                                              # in pixels: 3 times as wide
    0.9429
    """
    height, width = labels.shape
    channels = _channels(image)
    sums = _Sums(channels)
    for top in range(0, height, band):
        bottom = min(top + band, height)
        sums.add(np.asarray(labels[top:bottom]), np.asarray(image[top:bottom]), top)
    return _rows(sums, height, width, channels, _calibration(pixel_size))


def table_columns(image: Any, pixel_size: tuple[float, float, str] | None = None) -> list[str]:
    """The columns :func:`measure_objects` gives for ``image`` and ``pixel_size``, objects or none."""
    return object_columns(_channels(image), _calibration(pixel_size) is not None)


def _channels(image: Any) -> int:
    return 1 if len(image.shape) == 2 else image.shape[2]


def _calibration(pixel_size: tuple[float, float, str] | None) -> tuple[float, float] | None:
    """The (y, x) pixel size in micrometres, or None where it is unknown or in no length unit."""
    return pixel_size[:2] if pixel_size is not None and pixel_size[2] == "micrometer" else None


def _rows(sums: _Sums, height: int, width: int, channels: int,
          calibration: tuple[float, float] | None = None) -> list[dict[str, object]]:
    rows = []
    for label in np.flatnonzero(sums.moments[:, 0]):
        n, sy, sx, syy, sxx, sxy = sums.moments[label]
        cy, cx = sy / n, sx / n
        covariance = np.array([[syy / n - cy * cy, sxy / n - cy * cx], [sxy / n - cy * cx, sxx / n - cx * cx]])
        (min_y, min_x), (max_y, max_x) = sums.low[label], sums.high[label] + 1
        row: dict[str, object] = {
            "label": int(label), "area": int(n), "centroid_y": round(float(cy), 2), "centroid_x": round(float(cx), 2),
            "bbox_min_y": int(min_y), "bbox_min_x": int(min_x), "bbox_max_y": int(max_y), "bbox_max_x": int(max_x),
        }
        means, maxima = sums.intensity_sum[label] / n, sums.intensity_max[label]
        if channels == 1:
            row["mean_intensity"], row["max_intensity"] = round(float(means[0]), 4), float(maxima[0])
        else:
            for c in range(channels):
                row[f"mean_intensity_c{c}"], row[f"max_intensity_c{c}"] = round(float(means[c]), 4), float(maxima[c])
        row["equivalent_diameter"] = round(float(np.sqrt(4 * n / np.pi)), 3)
        row["eccentricity"] = round(_eccentricity(covariance), 4)
        row["touches_border"] = bool(min_y == 0 or min_x == 0 or max_y == height or max_x == width)
        if calibration is not None:
            size_y, size_x = calibration
            area = n * size_y * size_x
            row["area_um2"] = _significant(area)
            row["equivalent_diameter_um"] = _significant(np.sqrt(4 * area / np.pi))
            row["centroid_y_um"], row["centroid_x_um"] = _significant(cy * size_y), _significant(cx * size_x)
            row["eccentricity_physical"] = round(_eccentricity(covariance * np.outer(calibration, calibration)), 4)
        rows.append(row)
    return rows


def _eccentricity(covariance: np.ndarray) -> float:
    """Of the ellipse with the same second moments (scikit-image's): 0 for a circle, towards 1 for a line."""
    small, large = np.clip(np.linalg.eigvalsh(covariance), 0, None)
    return float(np.sqrt(1 - small / large)) if large > 0 else 0.0


def _significant(value: float) -> float:
    """``value`` to 4 decimals, or six significant digits where that keeps more: micrometres of nanometre pixels
    keep their size (0.000123 um2), and a centroid far from the origin its fraction (18000.45)."""
    value = float(value)
    decimals, significant = round(value, 4), float(f"{value:.6g}")
    return decimals if abs(decimals - value) <= abs(significant - value) else significant
