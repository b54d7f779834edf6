"""Pixels -> image file bytes: the one encoder for the API's returned images, the warm-up, drawings and benchmarks."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encoded(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """A uint8 array (H x W, H x W x 3 or 4) or a Pillow image as an image file (PNG unless `fmt` says otherwise);
    `options` go to Pillow's save (compress_level, quality, ...)."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
