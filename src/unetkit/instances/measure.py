"""One row per object: where it is, how big, how bright, what shape; the ``_objects.csv`` table.

Measured with scikit-image's ``regionprops_table`` on the instance labels and the image as
read from its file (intensities in the file's own units, not normalised).

>>> import numpy as np
>>> labels = np.zeros((6, 8), np.uint16); labels[1:3, 1:4] = 1; labels[3:6, 5:8] = 2
>>> image = np.arange(48, dtype=np.uint16).reshape(6, 8)
>>> rows = measure_objects(labels, image)
>>> [(r["label"], r["area"], r["touches_border"]) for r in rows]
[(1, 6, False), (2, 9, True)]
"""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops_table

COLUMNS = (
    "label", "area", "centroid_y", "centroid_x", "bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x",
    "mean_intensity", "max_intensity", "equivalent_diameter", "eccentricity", "touches_border",
)


def measure_objects(labels: np.ndarray, image: np.ndarray) -> list[dict[str, object]]:
    """Rows of :data:`COLUMNS` (channels get ``mean_intensity_c0``, ... for a multi-channel image)."""
    height, width = labels.shape
    table = regionprops_table(
        labels.astype(np.int64), intensity_image=image,  # (H, W) or (H, W, C)
        properties=("label", "area", "centroid", "bbox", "intensity_mean", "intensity_max",
                    "equivalent_diameter_area", "eccentricity"),
    )
    count = len(table["label"])
    rows = []
    for i in range(count):
        min_y, min_x, max_y, max_x = (int(table[f"bbox-{k}"][i]) for k in range(4))
        row: dict[str, object] = {
            "label": int(table["label"][i]), "area": int(table["area"][i]),
            "centroid_y": round(float(table["centroid-0"][i]), 2), "centroid_x": round(float(table["centroid-1"][i]), 2),
            "bbox_min_y": min_y, "bbox_min_x": min_x, "bbox_max_y": max_y, "bbox_max_x": max_x,
        }
        if image.ndim == 2:
            row["mean_intensity"] = round(float(table["intensity_mean"][i]), 4)
            row["max_intensity"] = float(table["intensity_max"][i])
        else:
            for c in range(image.shape[2]):
                row[f"mean_intensity_c{c}"] = round(float(table[f"intensity_mean-{c}"][i]), 4)
                row[f"max_intensity_c{c}"] = float(table[f"intensity_max-{c}"][i])
        row["equivalent_diameter"] = round(float(table["equivalent_diameter_area"][i]), 3)
        row["eccentricity"] = round(float(table["eccentricity"][i]), 4)
        row["touches_border"] = min_y == 0 or min_x == 0 or max_y == height or max_x == width
        rows.append(row)
    return rows
