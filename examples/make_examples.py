"""Writes the example uploads in this folder from digits written by hand as pen paths: python examples/make_examples.py.

No MNIST pixels: the shapes are this file's own strokes, then drawn, photographed and scanned by the project's code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnist_edge.runtime.preprocess import preprocess
from mnist_edge.train.drawn import draw, paint, to_png
from mnist_edge.train.numbers import written as written_line
from mnist_edge.train.synthetic_photos import photograph, pick_style, render

HERE = Path(__file__).resolve().parent


# Pen paths on a 28 x 28 page, (x, y), written the way a person writes each digit.
STROKES = {
    7: [[(7, 6), (21, 6), (19, 11), (15, 17), (12, 23)]],
    2: [[(8, 10), (10, 6), (15, 5), (19, 8), (18, 13), (13, 18), (8, 23), (21, 23)]],
    1: [[(11, 8), (15, 5), (15, 23)]],
    0: [[(14, 5), (9, 8), (8, 14), (9, 20), (14, 23), (19, 20), (20, 14), (19, 8), (14, 5)]],
    4: [[(16, 5), (8, 16), (21, 16)], [(17, 10), (17, 23)]],  # two strokes, as a 4 is usually written
    3: [[(8, 7), (13, 5), (19, 8), (14, 13), (20, 17), (15, 23), (8, 21)]],
}
NUMBER = "2024"  # drawn on the wide canvas of the Number mode
PHOTO_NUMBER = "371"  # written on paper and photographed
NUMBER_CANVAS = (840, 280)


def written(label: int) -> np.ndarray:
    """A 28 x 28 uint8 digit (white on black, MNIST's layout) from its pen paths, anti-aliased."""
    page = Image.new("L", (112, 112), 0)
    pen = ImageDraw.Draw(page)
    for path in STROKES[label]:
        pen.line([(4 * x, 4 * y) for x, y in path], fill=255, width=10, joint="curve")
    return np.asarray(page.resize((28, 28), Image.Resampling.BOX))


def _first(make, want) -> tuple:
    """The first seed's result that `want` accepts: examples stay fixed while showing the case they are for."""
    return next(result for seed in range(1000) if want(result := make(np.random.default_rng(seed))))


def number_canvas(text: str, rng: np.random.Generator) -> bytes:
    """A number drawn on the wide canvas (black strokes on a transparent 840 x 280 page) as its PNG."""
    line, _, _ = written_line([written(int(d)) for d in text], rng, height=150, pen=12, touching=False, broken=False)
    page = np.zeros(NUMBER_CANVAS[::-1], dtype=np.uint8)
    top, left = (page.shape[0] - line.shape[0]) // 2, (page.shape[1] - line.shape[1]) // 2
    page[top : top + line.shape[0], left : left + line.shape[1]] = line
    image = paint(page, "black-on-white", rng)
    image[:, :, 3] = page  # the canvas' own transparency: only the strokes are opaque
    image[:, :, :3] = 0
    return to_png(image)


def number_photo(text: str, rng: np.random.Generator) -> tuple[bytes, dict]:
    """A number written with a pen on paper and photographed by a phone (1600 x 1200 JPEG)."""
    style = pick_style(rng, "held-out")
    line, _, _ = written_line([written(int(d)) for d in text], rng, height=280, pen=16, touching=False, broken=False)
    return photograph(Image.fromarray(line), rng, style, "2mp")


def make_examples(out: Path = HERE) -> list[Path]:
    """canvas_<d>.png (transparent 280 x 280), its v2_<d>.json request, photo_<d>.jpg (1600 x 1200, EXIF-rotated),
    scan_<d>.jpg (grey, 600 x 800), number_<n>.png (the wide canvas, 840 x 280) and photo_number_<n>.jpg."""
    labels = list(STROKES)
    digits = [written(label) for label in labels]
    canvas, _ = _first(lambda rng: draw(digits[0], rng), lambda r: r[1]["style"] == "canvas")
    photo, _ = _first(lambda rng: render(digits[1], rng, split="held-out"), lambda r: r[1]["orientation"] == 6)
    # A scan: the drawing in black on white paper, enlarged as a 100 dpi flatbed would, with a little sensor noise.
    ink = _first(lambda rng: draw(digits[2], rng), lambda r: r[1]["style"] == "canvas")[0][:, :, 3]
    page = np.full((800, 600), 250, dtype=np.float32)
    page[200:480, 160:440] -= ink.astype(np.float32) * (220 / 255)
    page += np.random.default_rng(0).normal(0, 2.5, page.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(page.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    # What /v2 takes: the canvas as the API preprocesses it, as UINT8 MNIST pixels in an Open Inference Protocol body.
    pixels = np.round(preprocess(to_png(canvas))[0, :, :, 0] * 255).astype(int)
    request = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": pixels.tolist()}]}
    # The photographed number: the first seed whose photo is on white paper and stored sideways with an EXIF turn, so
    # the answer's boxes show they are in the upright image.
    number_jpeg, _ = _first(lambda rng: number_photo(PHOTO_NUMBER, rng),
                            lambda r: r[1]["orientation"] == 6 and r[1]["paper"] == "white")
    files = {f"canvas_{labels[0]}.png": to_png(canvas), f"v2_{labels[0]}.json": json.dumps(request).encode(),
             f"photo_{labels[1]}.jpg": photo, f"scan_{labels[2]}.jpg": buffer.getvalue(),
             f"number_{NUMBER}.png": number_canvas(NUMBER, np.random.default_rng(0)),
             f"photo_number_{PHOTO_NUMBER}.jpg": number_jpeg}
    out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (out / name).write_bytes(body)
    return [out / name for name in files]


if __name__ == "__main__":
    for path in make_examples():
        print(path)
