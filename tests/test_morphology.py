"""runtime.morphology: the square maximum and minimum filter, against Pillow's and a pixel-by-pixel one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from mnist_edge.runtime.morphology import rank_filter


@pytest.mark.parametrize("size", [1, 3, 7, 21])
@pytest.mark.parametrize(("op", "pillow"), [(np.maximum, ImageFilter.MaxFilter), (np.minimum, ImageFilter.MinFilter)])
def test_centred_filter_is_pillows(size, op, pillow):
    image = (np.random.default_rng(size).random((37, 52)) * 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(image).filter(pillow(size)))
    got = rank_filter(image, size, op)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


@pytest.mark.parametrize("grow", [1, 2, 5])
def test_padded_filter_takes_each_block_that_starts_at_the_pixel(grow):
    values = np.random.default_rng(grow).random((9, 13)).astype(np.float32)
    padded = np.pad(values, (grow, 2 * grow))
    height, width = values.shape[0] + 2 * grow, values.shape[1] + 2 * grow
    expected = np.array([[padded[y : y + grow + 1, x : x + grow + 1].max() for x in range(width)] for y in range(height)])
    got = rank_filter(values, grow + 1, np.maximum, pad=(grow, 2 * grow), mode="constant")
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_booleans_stay_booleans():
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    grown = rank_filter(mask, 3, np.maximum)
    assert grown.dtype == bool and np.array_equal(np.flatnonzero(grown.ravel()), [6, 7, 8, 11, 12, 13, 16, 17, 18])
