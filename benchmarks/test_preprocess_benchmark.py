"""Preprocessing latency: a canvas drawing, PNG uploads (RGBA and one channel), phone photos, MNIST pixels (run: pytest benchmarks --benchmark-only)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnist_edge.runtime.preprocess import decode_image, normalize, preprocess, scale_pixels
from mnist_edge.train.drawn import draw, to_png
from mnist_edge.train.synthetic_photos import render


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


def test_decode_and_normalize_one_channel_png(benchmark, canvas_rgba):
    buffer = io.BytesIO()
    Image.fromarray(canvas_rgba[:, :, 3]).save(buffer, format="PNG")  # the canvas' alpha as an L PNG
    data = buffer.getvalue()
    out = benchmark(lambda: normalize(decode_image(data)))
    assert out.shape == (28, 28, 1)


@pytest.mark.parametrize("size", ["2mp", "12mp"])
def test_preprocess_phone_photo(benchmark, digit, size):
    jpeg, _ = render(digit, np.random.default_rng(0), size=size)  # 1600 x 1200 or 4032 x 3024 JPEG
    out = benchmark(preprocess, jpeg)  # the default 4 MP limit: a 12 MP photo is decoded at 1/4
    assert out.shape == (1, 28, 28, 1)


def test_scale_pixels_one_digit(benchmark, digit):
    out = benchmark(scale_pixels, digit)
    assert out.shape == (1, 28, 28, 1)
