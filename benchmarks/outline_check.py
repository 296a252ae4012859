"""Does the check for outlines drawn into label images (``unetkit.data.masks``) refuse outlined labels and pass
real ones? Every label image of the public sets (``benchmarks/public_data.py``) and of the embedded sample is
checked as it is, then with skimage's outlines (thick, inner, outer) drawn into it as one value (65535), as some
annotation tools export a 'boundary' value.

    python benchmarks/outline_check.py [--sets ~/.cache/unetkit-study/sets]

Prints any real label image refused (a false alarm), any outlined one with 10 objects or more that passes, the
counts, and the check's time per plane.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from skimage.segmentation import find_boundaries

from unetkit.data.io import read_planes
from unetkit.data.masks import BOUNDARY_NEIGHBOURS, check_instance_labels
from unetkit.data.sample import sample_path
from unetkit.errors import InputError

OUTLINE = 65535


def refused(labels: np.ndarray, name: str) -> bool:
    """True if the label check refuses ``labels``."""
    try:
        check_instance_labels(labels, name)
    except InputError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=Path, default=Path.home() / ".cache" / "unetkit-study" / "sets")
    args = parser.parse_args()
    files = sorted(args.sets.glob("*/*/masks/*")) + sorted(sample_path("train").parent.glob("*/masks/*"))
    planes = false_alarms = outlined = caught = 0
    seconds = 0.0
    for path in files:
        for index, labels in enumerate(read_planes(path)):
            planes += 1
            start = time.perf_counter()
            if refused(labels, str(path)):
                false_alarms += 1
                print(f"refused as it is: {path} [{index}]")
            seconds += time.perf_counter() - start
            for mode in ("thick", "inner", "outer"):
                drawn = np.where(find_boundaries(labels, mode=mode), OUTLINE, labels).astype(np.uint32)
                if np.unique(drawn[drawn > 0]).size - 1 < BOUNDARY_NEIGHBOURS:
                    continue  # fewer objects than the check needs
                outlined += 1
                if refused(drawn, str(path)):
                    caught += 1
                else:
                    print(f"outlined ({mode}) but passed: {path} [{index}]")
    print(f"{planes} label planes: {false_alarms} refused as they are; {caught} of {outlined} outlined versions with "
          f"{BOUNDARY_NEIGHBOURS} objects or more refused; the check took {seconds / max(planes, 1) * 1000:.0f} ms a "
          "plane")


if __name__ == "__main__":
    main()
