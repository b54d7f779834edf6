"""Writers the model never saw: MNIST digits re-shaped the way some people write (a strong slant, a 1 with a long
flag and a base, a crossed 7, ...), then drawn on the canvas with `drawn.py`'s pens. No training generator makes
these shapes; they stand in for one person's hand when measuring training on corrections."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

from mnist_edge.runtime.errors import UnknownNameError
from mnist_edge.train.drawn import draw

WORK = 112  # shapes are edited at 4 x 28, where a stroke of 8 px is MNIST's 2 px pen
STROKE = 8
Shape = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _big(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(digit).resize((WORK, WORK), Image.Resampling.BICUBIC)


def _fit(layer: Image.Image) -> np.ndarray:
    """A WORK-sized ink layer back to a 28 x 28 MNIST-style digit: its ink fitted into the central 20 x 20 box."""
    box = layer.getbbox()
    crop = layer.crop(box)
    scale = 20 * WORK / 28 / max(crop.size)  # MNIST's 20 px box, at WORK size
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    crop = crop.resize(size, Image.Resampling.BILINEAR)
    out = Image.new("L", (WORK, WORK), 0)
    out.paste(crop, ((WORK - crop.width) // 2, (WORK - crop.height) // 2))
    return np.asarray(out.resize((28, 28), Image.Resampling.BOX))


def _ink_pixels(layer: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels that are ink."""
    ys, xs = np.nonzero(np.asarray(layer) > 127)
    return ys, xs


def slanted(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit leaning hard to the right: a shear of 0.6-0.9 (training's augmentation stops at 0.15)."""
    shear = rng.uniform(0.6, 0.9)
    wide = Image.new("L", (WORK * 2, WORK), 0)
    wide.paste(_big(digit), (WORK // 2, 0))
    # Pillow's affine maps output to input: x_in = x_out + shear * (y_out - centre) moves the top to the right.
    leaned = wide.transform(wide.size, Image.Transform.AFFINE, (1, shear, -shear * WORK / 2, 0, 1, 0),
                            Image.Resampling.BILINEAR)
    return _fit(leaned)


def flagged_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 with a long flag from its top down to the left and a base bar under it."""
    layer = _big(digit)
    ys, xs = _ink_pixels(layer)
    top = (float(xs[ys == ys.min()].mean()), float(ys.min()))
    bottom = (float(xs[ys == ys.max()].mean()), float(ys.max()))
    height = bottom[1] - top[1]
    pen = ImageDraw.Draw(layer)
    flag = height * rng.uniform(0.35, 0.55)
    angle = np.radians(rng.uniform(30, 55))  # below the horizontal
    pen.line([top, (top[0] - flag * np.cos(angle), top[1] + flag * np.sin(angle))], fill=255, width=STROKE)
    half = height * rng.uniform(0.25, 0.4)
    pen.line([(bottom[0] - half, bottom[1]), (bottom[0] + half, bottom[1])], fill=255, width=STROKE)
    return _fit(layer)


def crossed_seven(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a bar across the middle of its stem."""
    layer = _big(digit)
    ys, xs = _ink_pixels(layer)
    row = int(ys.min() + (ys.max() - ys.min()) * rng.uniform(0.45, 0.6))
    at = xs[ys == row] if (ys == row).any() else xs
    centre = float(at.mean())
    half = (xs.max() - xs.min()) * rng.uniform(0.25, 0.4)
    ImageDraw.Draw(layer).line([(centre - half, row), (centre + half, row)], fill=255, width=STROKE)
    return _fit(layer)


# name -> how the writer shapes each digit it shapes its own way (the others it is not used for).
STYLES: dict[str, dict[int, Shape]] = {
    "slanted": dict.fromkeys(range(10), slanted),
    "flagged-ones": {1: flagged_one},
    "crossed-sevens": {7: crossed_seven},
    "continental": {1: flagged_one, 7: crossed_seven},  # as many European schools teach them
}


def style_digits(name: str) -> tuple[int, ...]:
    """The digits a style reshapes, or UnknownNameError listing the styles."""
    if name not in STYLES:
        raise UnknownNameError("writer style", name, list(STYLES))
    return tuple(STYLES[name])


def iter_style(name: str, digits: np.ndarray, labels: np.ndarray, count: int, *,
               seed: int) -> Iterator[tuple[np.ndarray, int]]:
    """Up to `count` canvas drawings (RGBA 280 x 280) of the given MNIST digits in a style, with their labels;
    only the digits the style reshapes are used, and drawing i depends only on (seed, i)."""
    shapes = STYLES[name]
    picked = np.flatnonzero(np.isin(labels, style_digits(name)))[:count]
    for i, index in enumerate(picked):
        rng = np.random.default_rng([seed, 7, i])  # 7: a stream no other generator uses
        yield draw(shapes[int(labels[index])](digits[index], rng), rng)[0], int(labels[index])
