"""The smallest object a model keeps, chosen on its validation images.

What a network calls an object but the labels do not (debris, a cell's fragment, a piece the
image border cuts) is often smaller than any labelled object, and how small "too small" is
depends on the set: no fixed size, and no rule from the training labels' sizes, held on
every set measured (BENCHMARKS.md, "Objects"). So training tries each size of
:data:`CANDIDATE_SIZES` on the validation images, the way StarDist tunes its thresholds on
them, and keeps the one of the best mean F1@0.5 (the smallest among equals). The labels say
what a real object can be: a size above half the smallest labelled object of a validation
image is never tried. Without that bound, one crop of cells3d whose predicted fragments
happened to match nothing chose 320 px and lost 0.08 F1 on its test crops, whose labels keep
small pieces cut by the border; with it, a set whose labels hold small objects keeps 10 px
(BENCHMARKS.md, "The minimum object size").

Training keeps a :class:`SizeCalibration` per validation pass; its totals add up over the
images (and over the ranks, under DDP) before the choice.

>>> truth = np.zeros((20, 40), np.int32); truth[2:12, 2:12] = 1; truth[2:12, 20:30] = 2   # 100 px each
>>> found = truth.copy(); found[15:18, 35:38] = 3                                       # + 9 px of debris
>>> calibration = SizeCalibration(sizes=(1, 10, 50, 80))
>>> calibration.add(found, truth)
>>> [round(rows[0]["f1"], 3) for rows in calibration.rows if rows], len(calibration.rows[3])   # 80 > 100 / 2: untried
([0.8, 1.0, 1.0], 0)
>>> calibration.sizes[calibration.choose()]
10
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .postprocess import finish
from .scores import object_scores
from .task import InstanceTask

CANDIDATE_SIZES = (10, 20, 40, 80, 160, 320)  # px; 10 is the fixed default this replaces


def allowed_sizes(truth: np.ndarray, sizes: Sequence[int] = CANDIDATE_SIZES) -> list[int]:
    """The sizes of ``sizes`` up to half the area of ``truth``'s smallest object (the first always;
    every size for an image without labelled objects)."""
    ids, areas = np.unique(np.asarray(truth), return_counts=True)  # not bincount: ids may skip up to 2**32
    areas = areas[ids != 0]
    limit = float(areas.min()) / 2 if len(areas) else math.inf
    return [size for index, size in enumerate(sizes) if index == 0 or size <= limit]


@dataclass
class SizeCalibration:
    """Scores of the validation images at each candidate size, added image by image.

    ``add`` takes an image's labels post-processed down to 1 px; ``totals`` are what to add up
    over processes (F1 sums, then image counts, per size); ``choose`` the index of the size
    of the best mean F1@0.5 that every image allowed (the smallest among equals).
    """

    sizes: tuple[int, ...] = CANDIDATE_SIZES
    rows: list[list[dict[str, float]]] = field(init=False)  # per size: the rows of the images allowing it

    def __post_init__(self) -> None:
        self.rows = [[] for _ in self.sizes]

    def add(self, unfiltered: np.ndarray, truth: np.ndarray) -> None:
        allowed = allowed_sizes(truth, self.sizes)
        for index, size in enumerate(self.sizes):
            if size in allowed:
                self.rows[index].append(object_scores(finish(np.asarray(unfiltered), size), np.asarray(truth)))

    def totals(self) -> list[float]:
        return [sum(row["f1"] for row in rows) for rows in self.rows] + [float(len(rows)) for rows in self.rows]

    def choose(self, totals: Sequence[float] | None = None) -> int:
        totals = self.totals() if totals is None else totals
        sums, counts = totals[: len(self.sizes)], totals[len(self.sizes):]
        best_index, best_mean = 0, -math.inf
        for index, (total, count) in enumerate(zip(sums, counts)):
            if counts[0] == 0 or count < counts[0]:  # some image did not allow this size
                continue
            if total / count > best_mean + 1e-9:
                best_index, best_mean = index, total / count
        return best_index


def calibration_for(task: object, fixed_size: int | None) -> SizeCalibration | None:
    """The calibration a validation pass runs, or None: not an instance task, a size the user
    fixed (``--min-object-size``), or a method whose size also prunes its seeds (three-class,
    border-weights), where labels kept down to 1 px filtered afterwards would not be its labels."""
    if not isinstance(task, InstanceTask) or fixed_size is not None or task.method != "distance":
        return None
    return SizeCalibration()
