"""The ways people draw digits that MNIST's American writers seldom do (a crossed 7, a 1 with a flag and a base, an
open 4, a slashed 0, ...) drawn as pen strokes on the canvas: the shipped model reads them, and as digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_edge.runtime.answers import answers
from mnist_edge.runtime.backends import backend_class
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.preprocess import normalize
from mnist_edge.train.negatives import render

DRAWINGS = 20  # of each variant, each with its own pen, size, place and colours


def _arc(cx: float, cy: float, r: float, start: float, end: float, n: int = 24) -> list[tuple[float, float]]:
    """Part of a circle, from `start` to `end` in half turns (y grows downwards, as on the canvas)."""
    t = np.linspace(start * math.pi, end * math.pi, n)
    return list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))


# (digit, strokes in a unit box): each stroke is one pen-down polyline.
VARIANTS = {
    "crossed 7": (7, [[(0.1, 0.05), (0.9, 0.05), (0.4, 1.0)], [(0.35, 0.5), (0.85, 0.5)]]),
    "1 with flag and base": (1, [[(0.25, 0.25), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]]),
    "1 with a short flag": (1, [[(0.38, 0.15), (0.55, 0.0), (0.55, 1.0)]]),
    "1 with a long flag": (1, [[(0.25, 0.3), (0.55, 0.0), (0.55, 1.0)]]),
    "open 4": (4, [[(0.45, 0.0), (0.1, 0.6), (0.9, 0.6)], [(0.7, 0.2), (0.7, 1.0)]]),
    "closed 4 in one stroke": (4, [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.65), (0.95, 0.65)]]),
    "9 with a straight stem": (9, [_arc(0.45, 0.3, 0.3, 0, 2), [(0.75, 0.3), (0.75, 1.0)]]),
    "slashed 0": (0, [_arc(0.5, 0.5, 0.5, 0, 2, 40), [(0.8, 0.1), (0.2, 0.9)]]),
    "2 with a loop": (2, [_arc(0.5, 0.3, 0.35, 1.0, 2.25) + [(0.1, 1.0), (0.2, 0.85), (0.3, 0.95), (0.9, 1.0)]]),
    "3 with a flat top": (3, [[(0.1, 0.0), (0.85, 0.0), (0.4, 0.4)] + _arc(0.45, 0.7, 0.3, -0.5, 0.75)]),
    "8 in one stroke": (8, [_arc(0.5, 0.27, 0.25, 0.5, 2.5) + _arc(0.5, 0.75, 0.27, -0.5, 1.5)]),
}


@pytest.fixture(scope="module")
def default_model(shipped_models):
    manifest = read_manifest(shipped_models)
    entry = manifest["artifacts"][manifest["default"]]
    backend = backend_class(entry["format"])(shipped_models / entry["file"])
    backend.load()
    return backend, entry["threshold"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_digit_variants_read_right_and_as_digits(default_model, name):
    backend, threshold = default_model
    digit, strokes = VARIANTS[name]
    images = np.stack([normalize(render(strokes, np.random.default_rng([7, i]))) for i in range(DRAWINGS)])
    read = answers(backend.predict(images), threshold)
    right = float((read.probabilities.argmax(axis=1) == digit).mean())
    as_digits = float(read.is_digit.mean())
    assert right >= 0.9 and as_digits >= 0.9, f"{name}: {right:.0%} read as {digit}, {as_digits:.0%} called digits"
