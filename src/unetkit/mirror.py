"""Mirroring beyond an image's edges: one rule for training patches, tiles and padded inputs.

Training patches that reach past an image, the tiler's windows and the padding of an input
up to a size the network takes all extend the image the same way: mirrored with the edge
pixel repeated (``... 1 0 | 0 1 2 | 2 1 ...``), which works for images of any size, one
pixel included. With one rule the network meets at inference the borders it was trained on,
and one tile covering a whole image gives exactly the whole-image prediction.

>>> import torch
>>> pad_bottom_right(torch.arange(3.0).reshape(1, 1, 1, 3), 2, 5).tolist()
[[[[0.0, 1.0, 2.0, 2.0, 1.0], [0.0, 1.0, 2.0, 2.0, 1.0]]]]
"""

from __future__ import annotations

import numpy as np
import torch


def mirror_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices ``start..stop-1`` folded into ``[0, size)`` by mirroring (edge repeated).

    >>> mirror_indices(-2, 5, 3).tolist()
    [1, 0, 0, 1, 2, 2, 1]
    """
    index = np.arange(start, stop) % (2 * size)
    return np.where(index >= size, 2 * size - 1 - index, index)


def pad_bottom_right(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``x`` (``(..., H, W)``) extended at the bottom and right to ``height`` x ``width`` by mirroring.

    >>> import torch
    >>> pad_bottom_right(torch.zeros(1, 1, 5, 9), 8, 12).shape[-2:]
    torch.Size([8, 12])
    """
    old_height, old_width = x.shape[-2:]
    if height < old_height or width < old_width:
        raise ValueError(f"cannot pad {old_height}x{old_width} down to {height}x{width}")
    if (height, width) == (old_height, old_width):
        return x
    rows = torch.from_numpy(mirror_indices(0, height, old_height)).to(x.device)
    cols = torch.from_numpy(mirror_indices(0, width, old_width)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)
