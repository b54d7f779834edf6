"""Handwritten numbers made from MNIST digits: 2-6 digits retraced by a pen on a wide canvas, touching, or photographed.

Each digit is an MNIST digit retraced as train/synthetic_photos.py does it (its skeleton, a round pen), at its own
height and baseline; the number is then painted as a canvas or an upload paints one digit (train/drawn.py), or
photographed on lit paper (train/synthetic_photos.py). Tune on numbers of training digits, measure on test digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mnist_edge.runtime.morphology import rank_filter
from mnist_edge.train.drawn import STYLES, THICKNESS_BUCKETS, paint, to_png
from mnist_edge.train.synthetic_photos import PENS, frame, pen_layer, photograph, pick_style

KINDS = ("separate", "touching", "photo")
DIGITS = (2, 6)  # digits in a number, both ends included
CANVAS_HEIGHT = 280  # the wide canvas' height; its width follows the number
HEIGHT = (0.3, 0.72)  # a digit's height as a share of the canvas height: scribbled small to filling the line
SIZE_JITTER = 0.12  # each digit's height varies this much around the number's: nobody writes them all alike
BASELINE_JITTER = 0.08  # of the height: digits rise and fall along the line
GAP = (0.06, 0.5)  # of the height, between neighbours' ink when they stand apart
OVERLAP = (0.0, 0.03)  # of the height, how far a touching digit runs into its neighbour past the first touch
# A digit slides under its neighbour's overhang (a 7's bar) at most this share of the narrower one's width: past it,
# they would not touch but stack, as nobody writes.
REACH = 0.35
TOUCH = 0.5  # in a number of touching digits, the chance that a neighbour touches (one pair always does)
BROKEN = 0.25  # share of numbers with broken strokes: the pen skipped, a pencil line faded
BREAKS = (1, 4)  # gaps cut across the strokes of such a number ...
BREAK_WIDTH = (0.015, 0.04)  # ... each this share of the height wide: a skip, not a missing stroke
PHOTO_HEIGHT = (0.08, 0.16)  # a digit's height as a share of the photo's short side
PHOTO_WIDTH = 0.7  # a number longer than this share of the photo's width is written smaller, to fit the page
TRIES = 20
INK = 128  # a layer's pixels at least this strong are the stroke proper (where touching is tested)
RIM = 2  # px around a digit's strokes proper that still belong to it alone: their anti-aliased edge


@dataclass(frozen=True)
class Number:
    """One handwritten number: the file a user would send, its digits and how it was made."""

    data: bytes
    text: str
    conditions: dict
    # A canvas number's digits each drawn by itself, as PNGs: what a perfect segmentation would hand the model (none
    # for a photo, whose strokes are not traced to their digits).
    alone: tuple[bytes, ...] = ()


def _digit_layer(digit: np.ndarray, height: float, pen: float) -> np.ndarray:
    """One digit retraced by a pen, cropped to its ink: uint8 H x W, about `height` px tall."""
    # pen_layer's `height` is the 28 x 28 field's, its pen a share of that; MNIST's ink fills about 20 of its 28 rows.
    field = max(8, round(height * 28 / 20))
    layer = np.asarray(pen_layer(digit, field, pen / field))
    rows, cols = np.flatnonzero(layer.max(axis=1) >= INK), np.flatnonzero(layer.max(axis=0) >= INK)
    return layer[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _touch_offset(line: np.ndarray, layer: np.ndarray, top: int, start: int, stop: int) -> int | None:
    """The column where `layer` (its top at row `top`) first touches the ink already on `line`, moving left from `start`
    no further than `stop`; None if it never does."""
    h, w = layer.shape
    strokes = layer >= INK
    for x in range(start, max(stop, 0) - 1, -1):
        if (line[top : top + h, x : x + w][strokes] >= INK).any():
            return x
    return None


def _break_strokes(layer: np.ndarray, rng: np.random.Generator, pen: float, height: float) -> None:
    """Cut a few short gaps across the strokes (in place): the pen skipped or the line faded."""
    image = Image.fromarray(layer)
    eraser = ImageDraw.Draw(image)
    ys, xs = np.nonzero(layer >= INK)
    for _ in range(int(rng.integers(BREAKS[0], BREAKS[1] + 1))):
        k = int(rng.integers(len(ys)))
        angle = rng.uniform(0, np.pi)
        reach = pen * 1.2  # across the whole stroke, whichever way it runs there
        dx, dy = reach * np.cos(angle), reach * np.sin(angle)
        width = max(1, round(height * rng.uniform(*BREAK_WIDTH)))
        eraser.line([(xs[k] - dx, ys[k] - dy), (xs[k] + dx, ys[k] + dy)], fill=0, width=width)
    layer[:] = np.asarray(image)


def written(digits: list[np.ndarray], rng: np.random.Generator, *, height: float, pen: float, touching: bool,
            broken: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Digits written side by side -> a uint8 ink layer (255 = stroke) as wide as they need, which digit each pixel's
    stroke belongs to (int8, -1 for none; the later digit where two cross; a broken stroke's gap still its digit's)
    and how they were laid out."""
    layers = []
    for digit in digits:
        h = height * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)
        layers.append(_digit_layer(digit, h, pen))
    tall = max(layer.shape[0] for layer in layers)
    jitter = round(BASELINE_JITTER * height)
    line = np.zeros((tall + 2 * jitter, sum(layer.shape[1] for layer in layers) + round(GAP[1] * height) * len(layers)),
                    dtype=np.uint8)
    owners = np.full(line.shape, -1, dtype=np.int8)
    touches = [bool(rng.random() < TOUCH) for _ in layers[1:]] if touching else [False] * (len(layers) - 1)
    if touching and not any(touches):
        touches[int(rng.integers(len(touches)))] = True
    x = 0
    for k, layer in enumerate(layers):
        h, w = layer.shape
        top = jitter + (tall - h) + int(rng.integers(-jitter, jitter + 1))  # on a shared baseline, jittered
        if k and touches[k - 1]:
            stop = x - round(REACH * min(w, layers[k - 1].shape[1]))
            touch = _touch_offset(line, layer, top, x, stop)
            touches[k - 1] = touch is not None
            x = x if touch is None else max(stop, touch - round(rng.uniform(*OVERLAP) * height))
        elif k:
            x += round(rng.uniform(*GAP) * height)
        np.maximum(line[top : top + h, x : x + w], layer, out=line[top : top + h, x : x + w])
        owners[top : top + h, x : x + w][layer >= INK] = k
        x += w
    if broken:
        _break_strokes(line, rng, pen, height)
    rows = np.flatnonzero(line.any(axis=1))
    kept = slice(rows[0], rows[-1] + 1), slice(0, x)
    return line[kept], owners[kept], {"touching": sum(touches), "broken": broken}


def _scaled(line: np.ndarray, scale: float) -> np.ndarray:
    size = (max(1, int(line.shape[1] * scale)), max(1, int(line.shape[0] * scale)))
    return np.asarray(Image.fromarray(line).resize(size, Image.Resampling.BILINEAR))


def _scaled_owners(owners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = np.arange(shape[0]) * owners.shape[0] // shape[0]
    cols = np.arange(shape[1]) * owners.shape[1] // shape[1]
    return owners[np.ix_(rows, cols)]


def _pen(rng: np.random.Generator, height: float) -> tuple[str, float]:
    thickness = str(rng.choice(list(THICKNESS_BUCKETS)))
    return thickness, max(2.0, height * rng.uniform(*THICKNESS_BUCKETS[thickness]))


def canvas_number(digits: list[np.ndarray], rng: np.random.Generator, *,
                  touching: bool) -> tuple[bytes, dict, tuple[bytes, ...]]:
    """Digits as a wide canvas drawing (or an upload of one) in one of train/drawn.py's styles: PNG bytes, how it was
    drawn, and each digit drawn by itself (`alone`), PNG bytes."""
    image, owners, conditions = canvas_line(digits, rng, touching=touching)
    return to_png(image), conditions, tuple(to_png(digit) for digit in alone(image, owners, conditions["style"]))


def alone(image: np.ndarray, owners: np.ndarray, style: str) -> list[np.ndarray]:
    """Each digit of a canvas number (`canvas_line`'s RGBA pixels and stroke owners) as if nothing else were drawn:
    its strokes and their anti-aliased rim kept, every other pixel the page. Where two digits' strokes cross, the
    crossing is the later digit's (as the owners say), so the earlier one has a gap there."""
    page = paint(np.zeros((1, 1), np.uint8), style, np.random.default_rng(0))[0, 0]  # no ink: the colour is moot
    others = owners >= 0
    out = []
    for k in range(int(owners.max()) + 1):
        own = owners == k
        keep = (rank_filter(own.view(np.uint8), 2 * RIM + 1, np.maximum, mode="constant") > 0) & (own | ~others)
        out.append(np.where(keep[:, :, None], image, page))
    return out


def canvas_line(digits: list[np.ndarray], rng: np.random.Generator, *,
                touching: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Digits as a wide canvas drawing: its RGBA pixels, which digit each stroke pixel belongs to (-1 for none) and
    how it was drawn."""
    height = rng.uniform(*HEIGHT) * CANVAS_HEIGHT
    thickness, pen = _pen(rng, height)
    broken = bool(rng.random() < BROKEN)
    for _ in range(TRIES):  # touching: written again until a pair does touch (some shapes never meet within REACH)
        line, owners, layout = written(digits, rng, height=height, pen=pen, touching=touching, broken=broken)
        if layout["touching"] or not touching:
            break
    if line.shape[0] > CANVAS_HEIGHT:  # a tall digit that also sits high: written a little smaller, as on the canvas
        line = _scaled(line, CANVAS_HEIGHT / line.shape[0])
        owners = _scaled_owners(owners, line.shape)
    # On the canvas: 280 px tall, at least as wide as tall, the line placed at a random height.
    canvas = np.zeros((CANVAS_HEIGHT, max(CANVAS_HEIGHT, line.shape[1])), dtype=np.uint8)
    top = int(rng.integers(0, CANVAS_HEIGHT - line.shape[0] + 1))
    left = int(rng.integers(0, canvas.shape[1] - line.shape[1] + 1))
    canvas[top : top + line.shape[0], left : left + line.shape[1]] = line
    placed = np.full(canvas.shape, -1, dtype=np.int8)
    placed[top : top + line.shape[0], left : left + line.shape[1]] = owners
    style = str(rng.choice(STYLES))
    return paint(canvas, style, rng), placed, {"style": style, "thickness": thickness, "height_px": round(height),
                                                **layout}


def photo_number(digits: list[np.ndarray], rng: np.random.Generator, *, split: str) -> tuple[bytes, dict]:
    """Digits written with a pen on paper and photographed (train/synthetic_photos.py): JPEG bytes."""
    style = pick_style(rng, split)
    w, h = frame(style, "2mp")
    height = min(w, h) * rng.uniform(*PHOTO_HEIGHT)
    pen = height * rng.uniform(*PENS[style["pen"]][0])
    broken = bool(rng.random() < BROKEN)
    line, _, layout = written(digits, rng, height=height, pen=pen, touching=False, broken=broken)
    if line.shape[1] > PHOTO_WIDTH * w:  # too long for the page: written smaller
        line = _scaled(line, PHOTO_WIDTH * w / line.shape[1])
    jpeg, conditions = photograph(Image.fromarray(line), rng, style, "2mp")
    return jpeg, {**conditions, **layout}


def iter_numbers(images: np.ndarray, labels: np.ndarray, count: int, *, kind: str, seed: int,
                 split: str = "held-out") -> Iterator[Number]:
    """`count` numbers of 2-6 digits drawn at random from `images`; number i depends only on (seed, kind, split, i).

    `split` picks the photo styles as train/synthetic_photos.py does ("tune" never uses the held-out pens, papers
    and lights); pass training digits with "tune" and test digits with "held-out".
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    stream = (KINDS.index(kind), 0 if split == "tune" else 1)
    for i in range(count):
        rng = np.random.default_rng([seed, *stream, i])
        picked = rng.integers(len(images), size=int(rng.integers(DIGITS[0], DIGITS[1] + 1)))
        digits = [images[k] for k in picked]
        cut: tuple[bytes, ...] = ()
        if kind == "photo":
            data, conditions = photo_number(digits, rng, split=split)
        else:
            data, conditions, cut = canvas_number(digits, rng, touching=kind == "touching")
        yield Number(data, "".join(str(int(labels[k])) for k in picked), {"index": i, "kind": kind, **conditions}, cut)
