"""Writes the example uploads in this folder from MNIST test digits: python examples/make_examples.py [MNIST folder]."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_edge.train.data import load_mnist
from mnist_edge.train.drawn import draw, to_png
from mnist_edge.train.photos import render

HERE = Path(__file__).resolve().parent


def _first(make, want) -> tuple:
    """The first seed's result that `want` accepts: examples stay fixed while showing the case they are for."""
    return next(result for seed in range(1000) if want(result := make(np.random.default_rng(seed))))


def make_examples(out: Path = HERE, data: str | Path | None = None) -> list[Path]:
    """canvas_<d>.png (transparent 280 x 280), photo_<d>.jpg (1600 x 1200, EXIF-rotated), scan_<d>.jpg (grey, 600 x 800)."""
    mnist = load_mnist(data)
    digits, labels = mnist.x_test, mnist.y_test
    canvas, _ = _first(lambda rng: draw(digits[0], rng), lambda r: r[1]["style"] == "canvas")
    photo, _ = _first(lambda rng: render(digits[1], rng, split="held-out"), lambda r: r[1]["orientation"] == 6)
    # A scan: the drawing in black on white paper, enlarged as a 100 dpi flatbed would, with a little sensor noise.
    ink = _first(lambda rng: draw(digits[2], rng), lambda r: r[1]["style"] == "canvas")[0][:, :, 3]
    page = np.full((800, 600), 250, dtype=np.float32)
    page[200:480, 160:440] -= ink.astype(np.float32) * (220 / 255)
    page += np.random.default_rng(0).normal(0, 2.5, page.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(page.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    files = {f"canvas_{labels[0]}.png": to_png(canvas), f"photo_{labels[1]}.jpg": photo, f"scan_{labels[2]}.jpg": buffer.getvalue()}
    out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (out / name).write_bytes(body)
    return [out / name for name in files]


if __name__ == "__main__":
    for path in make_examples(data=sys.argv[1] if len(sys.argv) > 1 else None):
        print(path)
