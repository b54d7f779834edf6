"""Preprocessing latency: a canvas drawing, a PNG upload, and MNIST pixels (run: pytest benchmarks --benchmark-only)."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge.runtime.preprocess import decode_image, normalize, scale_pixels
from mnist_edge.train.drawn import draw, to_png


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    # A fixed synthetic "0" so the benchmarks need no data set: a ring of ink on 28 x 28.
    ys, xs = np.mgrid[0:28, 0:28]
    r = np.hypot((ys - 14) / 9, (xs - 14) / 6)
    return (np.clip(1 - np.abs(r - 1) * 4, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def canvas_rgba(digit) -> np.ndarray:
    rng = np.random.default_rng(0)
    while True:  # a 280 x 280 RGBA drawing on a transparent background, as the Streamlit canvas sends
        image, cond = draw(digit, rng)
        if cond["style"] == "canvas":
            return image


def test_normalize_canvas_rgba(benchmark, canvas_rgba):
    out = benchmark(normalize, canvas_rgba)
    assert out.shape == (28, 28, 1)


def test_decode_and_normalize_png(benchmark, canvas_rgba):
    data = to_png(canvas_rgba)
    out = benchmark(lambda: normalize(decode_image(data)))
    assert out.shape == (28, 28, 1)


def test_scale_pixels_one_digit(benchmark, digit):
    out = benchmark(scale_pixels, digit)
    assert out.shape == (1, 28, 28, 1)
