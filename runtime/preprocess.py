"""The one shared preprocessing step: anything a user draws or uploads -> float32 N x 28 x 28 x 1 in [0, 1]."""

from __future__ import annotations

import numpy as np


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """MNIST-format uint8 (or 0-255) digits, N x 28 x 28, -> float32 N x 28 x 28 x 1 in [0, 1], no resizing."""
    pixels = np.asarray(pixels)
    return (pixels.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
