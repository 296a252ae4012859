"""The embedded HeLa nuclei sample as napari sample data: image and labels layers.

``hela_train`` gives the four training frames, ``hela_heldout`` the two frames that no
training sees; each as an image stack (frames on the first axis) and its instance labels.

>>> [(data.shape, meta["name"], kind) for data, meta, kind in hela_heldout()]
[((2, 700, 1100), 'HeLa held-out', 'image'), ((2, 700, 1100), 'HeLa held-out labels', 'labels')]
"""

from __future__ import annotations

import numpy as np

from ..data.io import read_planes
from ..data.sample import sample_path
from .reader import MASK_MODE_KEY, LayerData


def hela_layers(split: str, title: str) -> list[LayerData]:
    """Image and labels layers of one split of the sample (see :func:`unetkit.data.sample.sample_path`)."""
    folder = sample_path(split)
    image = np.stack(read_planes(folder / "images" / "hela.tif"))
    labels = np.stack(read_planes(folder / "masks" / "hela.tif"))
    low, high = np.percentile(image, [1, 99.8])  # unetkit's normalisation: nuclei bright, not the raw 16-bit range
    return [
        (image, {"name": title, "contrast_limits": [float(low), float(high)]}, "image"),
        # The masks are object ids: the Train widget reads them as instances.
        (labels, {"name": f"{title} labels", "metadata": {MASK_MODE_KEY: "instances"}}, "labels"),
    ]


def hela_train() -> list[LayerData]:
    """The sample's four training frames (0, 3, 6, 9) with their labels."""
    return hela_layers("train", "HeLa")


def hela_heldout() -> list[LayerData]:
    """The sample's two held-out frames (15, 19) with their labels."""
    return hela_layers("heldout", "HeLa held-out")
