"""runtime.encode: pixels come back from the file unchanged, and Pillow's save options reach the encoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnist_edge.runtime.encode import encoded


@pytest.mark.parametrize("shape", [(30, 20), (30, 20, 3), (30, 20, 4)])
def test_png_round_trips_the_pixels(shape):
    pixels = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = encoded(pixels[:, ::-1])  # a view that is not contiguous
    assert data.startswith(b"\x89PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels[:, ::-1])


def test_format_and_options_reach_pillow():
    page = Image.new("L", (64, 64), 200)
    low, high = encoded(page, "JPEG", quality=10), encoded(page, "JPEG", quality=95)
    assert low.startswith(b"\xff\xd8") and Image.open(io.BytesIO(high)).format == "JPEG" and len(low) < len(high)
