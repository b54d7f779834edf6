"""Drawings that are not digits (letters, words, symbols, scribbles, shapes, rings, faces, fragments, pairs,
specks), drawn on a 280 x 280 canvas the way `drawn.py` draws digits, for training and measuring the model's
not-a-digit class."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_edge.runtime.errors import DataError, MnistEdgeError
from mnist_edge.train.drawn import (
    CANVAS,
    HEIGHT_RANGE,
    MARGIN,
    STYLES,
    SUPERSAMPLE,
    THICKNESS_BUCKETS,
    draw,
    in_processes,
    paint,
)

# Letters nobody would read as a digit: no O/o/D (0), I/l/i/j/J/T/r (1, 7), Z/z (2), S/s (5), b/G (6), B (8), g/q/a/y (9),
# c/C/U/u/L/t/h (pieces of 0, 4, 6).
LETTERS = "AEFHKMNPRVWXYdefkmnpvwx"
# Greek and Cyrillic ones on the same rule (no θ/Φ/Ю (0), β (8), ξ/З (3), б/Ь (6), Ч (4), α/γ (9), Γ (7)); only
# where a system font draws them, as Pillow's own font is Latin only.
MORE_LETTERS = "ηλμπψωΔΛΠΣΨΩЖЩШЯДИЛЦжилшщяд"
SYMBOLS = "@#%&?+=*$<>^~£€"
ELONGATED = 12.0  # variance ratio of a piece's ink along / across it above which the piece is a bar
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
Paths = list[list[tuple[float, float]]]  # pen strokes, each a polyline in a unit box


@functools.cache
def fonts() -> tuple[str, ...]:
    """Every TrueType font on the system, sorted so a seed picks the same one on the same machine."""
    return tuple(sorted(str(p) for d in FONT_DIRS if d.is_dir() for p in d.rglob("*.ttf")))


@functools.cache  # loading a font file costs more than drawing a glyph with it
def _font(path: str | None) -> ImageFont.FreeTypeFont:
    # Pillow ships a scalable font of its own: the generator works on a machine with no fonts installed.
    return ImageFont.truetype(path, 96) if path else ImageFont.load_default(96)


def alphabet() -> str:
    """The letters the letter generators draw from: Latin, plus Greek and Cyrillic where system fonts have them."""
    return LETTERS + (MORE_LETTERS if fonts() else "")


def _ink(char: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    layer = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(layer).text((20, 10), char, fill=255, font=font)
    return layer


@functools.cache
def _missing(path: str | None) -> bytes:
    return _ink("\uffff", _font(path)).tobytes()  # a noncharacter: what the font draws for a glyph it lacks


def glyph(char: str, rng: np.random.Generator) -> np.ndarray:
    """One character in a random system font, fitted MNIST-style into a 20 x 20 box on 28 x 28 uint8."""
    choices = fonts() or (None,)
    path = choices[rng.integers(len(choices))]
    layer = _ink(char, _font(path))
    box = layer.getbbox()
    if box is None or layer.tobytes() == _missing(path):
        raise MnistEdgeError(f"no ink for {char!r}")
    crop = layer.crop(box)
    scale = 20 / max(crop.size)
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.LANCZOS)
    out = Image.new("L", (28, 28), 0)
    out.paste(crop, ((28 - crop.width) // 2, (28 - crop.height) // 2))
    return np.asarray(out)


def _chaikin(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    for _ in range(rounds):  # corner cutting: a hand's smooth curve through the points
        a, b = points[:-1], points[1:]
        points = np.concatenate([points[:1], np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], 1).reshape(-1, 2), points[-1:]])
    return points


def _circle(cx: float, cy: float, r: float, start: float = 0.0, end: float = 2 * math.pi, n: int = 40) -> list:
    t = np.linspace(start, end, n)
    return list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))


def render(paths: Paths, rng: np.random.Generator, *, jitter: float = 0.01) -> np.ndarray:
    """Pen strokes in a unit box, drawn at a random size, place, pen and style on the canvas: RGBA uint8."""
    style = str(rng.choice(STYLES))
    height = float(rng.uniform(*HEIGHT_RANGE))
    pen = max(2.0, height * rng.uniform(*THICKNESS_BUCKETS[str(rng.choice(list(THICKNESS_BUCKETS)))]))
    strokes = [np.asarray(p, dtype=np.float64) + rng.normal(0, jitter, (len(p), 2)) for p in paths]
    every = np.concatenate(strokes)
    low, span = every.min(axis=0), np.maximum(every.max(axis=0) - every.min(axis=0), 1e-3)
    scale = min((height - pen) / span.max(), (CANVAS - 2 * MARGIN - pen) / span.max())
    size = span * scale + pen
    corner = np.array([rng.uniform(MARGIN, max(MARGIN, CANVAS - MARGIN - size[i])) for i in (0, 1)])
    s = SUPERSAMPLE
    layer = Image.new("L", (CANVAS * s, CANVAS * s), 0)
    pencil = ImageDraw.Draw(layer)
    r = pen * s / 2
    for stroke in strokes:
        xy = [tuple(v) for v in ((stroke - low) * scale + corner + pen / 2) * s]
        if len(xy) > 1:
            pencil.line(xy, fill=255, width=max(1, round(2 * r)), joint="curve")
        for x, y in (xy[0], xy[-1]):  # round caps
            pencil.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return paint(np.asarray(layer.reduce(s)), style, rng)


def scribble(rng: np.random.Generator) -> Paths:
    """A tangle, a zigzag hatch or a few loose curves: what people draw to see what happens."""
    kind = rng.integers(3)
    if kind == 0:
        return [list(map(tuple, _chaikin(rng.uniform(0, 1, (int(rng.integers(6, 16)), 2)))))]
    if kind == 1:
        n = int(rng.integers(4, 10))
        xs = np.linspace(0, 1, 2 * n)
        ys = np.where(np.arange(2 * n) % 2, rng.uniform(0.7, 1.0, 2 * n), rng.uniform(0, 0.3, 2 * n))
        return [list(zip(xs, ys))]
    return [list(map(tuple, _chaikin(rng.uniform(0, 1, (int(rng.integers(3, 6)), 2))))) for _ in range(int(rng.integers(2, 5)))]


def _star(rng: np.random.Generator) -> Paths:
    points = int(rng.integers(5, 8))
    t = np.linspace(0, 2 * math.pi, 2 * points + 1) + rng.uniform(0, math.pi)
    r = np.where(np.arange(2 * points + 1) % 2, 0.4, 1.0)
    return [list(zip(r * np.cos(t), r * np.sin(t)))]


def _spiral(rng: np.random.Generator) -> Paths:
    t = np.linspace(0, rng.uniform(3, 6) * math.pi, 120)
    return [list(zip(t * np.cos(t), t * np.sin(t)))]


def _heart(rng: np.random.Generator) -> Paths:
    t = np.linspace(0, 2 * math.pi, 80)
    return [list(zip(16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))))]


SHAPES: dict[str, Callable[[np.random.Generator], Paths]] = {
    "square": lambda rng: [[(0, 0), (1, 0), (1, rng.uniform(0.6, 1.2)), (0, rng.uniform(0.6, 1.2)), (0, 0)]],
    "triangle": lambda rng: [[(0, 1), (rng.uniform(0.3, 0.7), 0), (1, 1), (0, 1)]],
    "diamond": lambda rng: [[(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0)]],
    "star": _star,
    "plus": lambda rng: [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "cross": lambda rng: [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "arrow": lambda rng: [[(0, 0.5), (1, 0.5)], [(0.7, 0.25), (1, 0.5), (0.7, 0.75)]],
    "heart": _heart,
    "spiral": _spiral,
    "house": lambda rng: [[(0, 1), (0, 0.4), (0.5, 0), (1, 0.4), (1, 1), (0, 1)]],
    "grid": lambda rng: [[(0.33, 0), (0.33, 1)], [(0.66, 0), (0.66, 1)], [(0, 0.33), (1, 0.33)], [(0, 0.66), (1, 0.66)]],
    "wave": lambda rng: [[(x, 0.5 + 0.4 * math.sin(x * rng.uniform(8, 16))) for x in np.linspace(0, 1, 60)]],
}


def shape(rng: np.random.Generator) -> Paths:
    """A geometric shape (never a bare circle: that is a 0), turned and stretched a little."""
    paths = SHAPES[str(rng.choice(list(SHAPES)))](rng)
    angle, stretch = rng.uniform(-0.35, 0.35), rng.uniform(0.75, 1.33)
    c, s = math.cos(angle), math.sin(angle)
    return [[(x * c - y * s, (x * s + y * c) * stretch) for x, y in p] for p in paths]


def ring(rng: np.random.Generator) -> Paths:
    """A circle with something inside or around it, so that "round" alone never means 0: a target, a sun, a
    circled cross, a circled shape or a circle holding a few marks."""
    rim = _circle(0.5, 0.5, 0.5)
    kind = rng.integers(5)
    if kind == 0:
        return [rim, _circle(0.5, 0.5, rng.uniform(0.1, 0.25))]  # one inner circle: two would close into a bold 0
    if kind == 1:
        rays = int(rng.integers(6, 13))
        t = np.linspace(0, 2 * math.pi, rays, endpoint=False) + rng.uniform(0, math.pi)
        return [_circle(0.5, 0.5, 0.25)] + [[(0.5 + 0.33 * math.cos(a), 0.5 + 0.33 * math.sin(a)),
                                             (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))] for a in t]
    if kind == 2:
        cross = SHAPES[str(rng.choice(["plus", "cross"]))](rng)
        return [rim] + [[(0.15 + 0.7 * x, 0.15 + 0.7 * y) for x, y in p] for p in cross]
    if kind == 3:
        inner = SHAPES[str(rng.choice(["square", "triangle", "star", "diamond"]))](rng)
        every = np.concatenate([np.asarray(p, float) for p in inner])
        low, span = every.min(axis=0), np.ptp(every, axis=0).max()
        return [rim] + [[(0.3 + 0.4 * (x - low[0]) / span, 0.3 + 0.4 * (y - low[1]) / span) for x, y in p] for p in inner]
    marks = rng.uniform(0.25, 0.75, (int(rng.integers(2, 6)), 2))
    return [rim] + [[tuple(m), tuple(m + rng.normal(0, 0.04, 2))] for m in marks]


def face(rng: np.random.Generator) -> Paths:
    """A smiley, a frown or a blank face: a head with eyes and a mouth (never a bare circle)."""
    head = _circle(0.5, 0.5, 0.5)
    eye = rng.uniform(0.03, 0.08)
    eyes = [_circle(0.33, 0.35, eye, n=12), _circle(0.67, 0.35, eye, n=12)]
    mood = rng.integers(3)
    if mood == 0:
        mouth = _circle(0.5, 0.45, 0.28, 0.2 * math.pi, 0.8 * math.pi, 20)
    elif mood == 1:
        mouth = _circle(0.5, 0.9, 0.25, 1.25 * math.pi, 1.75 * math.pi, 20)
    else:
        mouth = [(0.3, 0.72), (0.7, 0.72)]
    extra = [[(0.5, 0.45), (0.46, 0.58), (0.52, 0.58)]] if rng.random() < 0.4 else []
    return [head, *eyes, mouth, *extra]


def specks(rng: np.random.Generator) -> Paths:
    """Dots and short dashes scattered over the canvas: a tap-tap-tap or a dirty screen."""
    n = int(rng.integers(3, 40))
    centres = rng.uniform(0, 1, (n, 2))
    return [[tuple(c), tuple(c + rng.normal(0, 0.02, 2))] for c in centres]


def _cut_from(labels: np.ndarray) -> np.ndarray:
    """Indices of the digits a fragment may be cut from: no 1 or 7, whose pieces read as a 1."""
    return np.flatnonzero((labels != 1) & (labels != 7))


def fragment(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit cut by a line, 35-60 % of its ink kept; never of a 1 or a 7, and never a lone bar (which reads as 1)."""
    pool = _cut_from(labels)
    digit = digits[pool[rng.integers(len(pool))]].copy()
    ys, xs = np.nonzero(digit > 127)
    angle = rng.uniform(0, 2 * math.pi)
    side = xs * math.cos(angle) + ys * math.sin(angle)
    keep = np.quantile(side, rng.uniform(0.35, 0.6))
    yy, xx = np.mgrid[:28, :28]
    digit[(xx * math.cos(angle) + yy * math.sin(angle)) > keep] = 0
    ys, xs = np.nonzero(digit > 127)
    if len(ys) < 8:
        raise MnistEdgeError("the cut left too little ink")
    spread = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)))
    if spread[1] > ELONGATED * max(spread[0], 1e-6):  # one long thin stroke: a 1 in all but name
        raise MnistEdgeError("the cut left a bar")
    return digit


def _row(images: list[np.ndarray], overlap: int) -> np.ndarray:
    """28 x 28 images side by side, each overlapping the last by `overlap` columns, shrunk to fit 28 x 28."""
    step = 28 - overlap
    wide = np.zeros((28, step * (len(images) - 1) + 28), dtype=np.uint8)
    for i, image in enumerate(images):
        wide[:, i * step : i * step + 28] = np.maximum(wide[:, i * step : i * step + 28], image)
    out = Image.new("L", (28, 28), 0)
    small = Image.fromarray(wide).resize((28, round(28 * 28 / wide.shape[1])), Image.Resampling.LANCZOS)
    out.paste(small, (0, (28 - small.height) // 2))
    return np.asarray(out)


def pair(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two different digits side by side, touching or overlapping by up to a third: a number, not a digit."""
    first = int(rng.integers(len(digits)))
    others = np.flatnonzero(labels != labels[first])
    second = int(others[rng.integers(len(others))])
    return _row([digits[first], digits[second]], int(rng.integers(0, 8)))


def word(rng: np.random.Generator) -> np.ndarray:
    """Two or three letters written in a row, as initials or a short word."""
    letters = alphabet()
    chars = [str(rng.choice(list(letters))) for _ in range(int(rng.integers(2, 4)))]
    return _row([glyph(c, rng) for c in chars], int(rng.integers(0, 10)))


def _from_glyph(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return draw(image, rng)[0]


# name -> (is it kept out of training, how one sample is made from (digits, labels, rng)).
GENERATORS: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]]] = {
    "letters": (False, lambda d, l, rng: _from_glyph(glyph(str(rng.choice(list(alphabet()))), rng), rng)),
    "scribbles": (False, lambda d, l, rng: render(scribble(rng), rng)),
    "shapes": (False, lambda d, l, rng: render(shape(rng), rng)),
    "fragments": (False, lambda d, l, rng: _from_glyph(fragment(d, l, rng), rng)),
    "specks": (False, lambda d, l, rng: render(specks(rng), rng, jitter=0.0)),
    "symbols": (True, lambda d, l, rng: _from_glyph(glyph(str(rng.choice(list(SYMBOLS))), rng), rng)),
    "faces": (True, lambda d, l, rng: render(face(rng), rng)),
    "pairs": (True, lambda d, l, rng: _from_glyph(pair(d, l, rng), rng)),
    "rings": (False, lambda d, l, rng: render(ring(rng), rng)),
    "words": (False, lambda d, l, rng: _from_glyph(word(rng), rng)),
}
TRAINING = tuple(name for name, (held_out, _) in GENERATORS.items() if not held_out)
HELD_OUT = tuple(name for name, (held_out, _) in GENERATORS.items() if held_out)
# Independent random streams: what trains never repeats what tunes the threshold or what measures it.
STREAMS = {"train": 3, "validation": 4, "evaluation": 5}


def _check_sources(names: tuple[str, ...], labels: np.ndarray) -> None:
    """A one-line error, before any drawing, when the digits given cannot make every generator's drawings."""
    if "fragments" in names and not len(_cut_from(labels)):
        raise DataError(f"not-a-digit fragments are cut from digits other than 1 and 7, and none of these "
                        f"{len(labels)} is one: use more images (a larger --limit)")
    if "pairs" in names and len(np.unique(labels)) < 2:
        raise DataError(f"not-a-digit pairs need two different digits, and these {len(labels)} are all alike: use "
                        "more images (a larger --limit)")


def _sample(name: str, index: int, digits: np.ndarray, labels: np.ndarray, seed: int, stream: str):
    from mnist_edge.runtime.preprocess import normalize

    make = GENERATORS[name][1]
    rng = np.random.default_rng([seed, STREAMS[stream], list(GENERATORS).index(name), index])
    for _ in range(20):  # a cut that leaves a bar, or specks too faint to count as ink: draw another
        try:
            image = make(digits, labels, rng)
            return image, normalize(image)
        except MnistEdgeError:
            continue
    raise MnistEdgeError(f"{name} #{index}: no drawing after 20 tries")


def negative(name: str, index: int, digits: np.ndarray, labels: np.ndarray, *, seed: int, stream: str) -> np.ndarray:
    """Sample `index` of one generator as an RGBA canvas image; it depends only on (seed, stream, name, index)."""
    return _sample(name, index, digits, labels, seed, stream)[0]


def _chunk(job: tuple) -> np.ndarray:
    jobs, digits, labels, seed, stream = job
    return np.stack([_sample(name, i, digits, labels, seed, stream)[1] for name, i in jobs])


def negative_images(names: tuple[str, ...], per_generator: int, digits: np.ndarray, labels: np.ndarray, *,
                    seed: int, stream: str, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """`per_generator` drawings of each generator, normalized as the API would: float32 N x 28 x 28 x 1, and their names."""
    if per_generator:
        _check_sources(names, labels)
    jobs = [(name, i) for name in names for i in range(per_generator)]
    chunk = 200
    parts = [(jobs[i : i + chunk], digits, labels, seed, stream) for i in range(0, len(jobs), chunk)]
    images = in_processes(_chunk, parts, items=len(jobs), desc=f"not-digits ({stream})", workers=workers)
    kinds = np.array([name for name, _ in jobs])
    return (np.concatenate(images) if images else np.empty((0, 28, 28, 1), np.float32)), kinds
