"""The one square maximum or minimum filter (grey dilation or erosion) that preprocessing, photos and drawings share."""

from __future__ import annotations

import numpy as np


def rank_filter(values: np.ndarray, size: int, op: np.ufunc, *, pad: tuple[int, int] | None = None,
                mode: str = "edge") -> np.ndarray:
    """The maximum (op = np.maximum) or minimum (np.minimum) of each size x size block of a 2-D array.

    The array is first padded on every side of both axes by pad = (before, after), as np.pad's `mode` fills; the
    default, size // 2 on each side with the edges repeated, centres an odd block on each pixel and keeps the shape.
    Each output pixel is the block that starts at it in the padded array. Separable shifted comparisons: exact, in
    the input's dtype, and many times faster than Pillow's MaxFilter or sliding windows.
    """
    before, after = pad if pad is not None else (size // 2, size // 2)
    out = np.pad(values, (before, after), mode=mode)
    for axis in (0, 1):
        view = np.moveaxis(out, axis, 0)
        acc = view[: view.shape[0] - size + 1].copy()
        for shift in range(1, size):
            op(acc, view[shift : shift + acc.shape[0]], out=acc)
        out = np.moveaxis(acc, 0, axis)
    return out
