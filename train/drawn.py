"""A drawn-digit evaluation set: MNIST test digits redrawn the way people draw on a 280 x 280 canvas."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from mnist_edge.runtime.answers import split
from mnist_edge.runtime.encode import encoded
from mnist_edge.runtime.errors import MnistEdgeError
from mnist_edge.runtime.morphology import rank_filter
from mnist_edge.runtime.preprocess import preprocess

CANVAS = 280  # the Streamlit canvas' size, 10 x MNIST's
MARGIN = 2  # a drawing stays inside the canvas, if only just
HEIGHT_RANGE = (50, 250)  # from a digit scribbled in a corner to one filling the canvas
SIZE_BUCKETS = ((110, "small"), (190, "medium"), (CANVAS + 1, "large"))
# Pen width as a fraction of the digit's height; MNIST's own strokes are ~0.09 of it.
THICKNESS_BUCKETS = {"thin": (0.04, 0.07), "medium": (0.07, 0.12), "thick": (0.12, 0.2)}
STYLES = ("canvas", "black-on-white", "white-on-black")
# A canvas may draw in any stroke colour; white on transparent is the hard case.
CANVAS_COLOURS = ((0, 0, 0), (255, 255, 255), (31, 119, 180), (220, 20, 60))
UP = 4  # the skeleton is traced at 4 x MNIST, so it follows the strokes' middles smoothly
# Parts of a digit thicker than this (in 4x pixels, ~5 px at 28 x 28) are loops the writer filled in;
# thinning would collapse them to a line (a 9 into a 7), so they are drawn filled, as a brush leaves them.
BLOB = 21
SUPERSAMPLE = 2  # strokes are drawn at 2x and box-reduced: anti-aliased edges like a browser canvas brush
GROUPS = ("style", "size", "thickness")
INLINE_ITEMS = 600  # fewer drawings than this (~5 s) are made in this process: starting workers costs as much
Sample = tuple[np.ndarray, int, dict]


def _neighbours(p: np.ndarray) -> list[np.ndarray]:
    """P2..P9 of Zhang-Suen: N, NE, E, SE, S, SW, W, NW of every pixel of a 1-padded array."""
    h, w = p.shape[0] - 2, p.shape[1] - 2
    offsets = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))
    return [p[dy : dy + h, dx : dx + w] for dy, dx in offsets]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to a one-pixel skeleton (the path a pen would trace)."""
    skel = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            n = _neighbours(skel)
            core = skel[1:-1, 1:-1]
            count = sum(n)
            transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (core == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if remove.any():
                core[remove] = 0
                changed = True
        if not changed:
            return skel[1:-1, 1:-1].astype(bool)


def _bucket(value: float, buckets) -> str:
    return next(name for limit, name in buckets if value < limit)


def paint(ink: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """A uint8 ink layer (H x W, a 280 x 280 canvas or a wide one) as the RGBA image a canvas or an upload in that
    style would give."""
    image = np.empty((*ink.shape, 4), dtype=np.uint8)
    if style == "canvas":
        colour = CANVAS_COLOURS[rng.integers(len(CANVAS_COLOURS))]
        image[:, :, :3] = np.where(ink[:, :, None] > 0, np.array(colour, dtype=np.uint8), 0)
        image[:, :, 3] = ink  # a transparent background: only the strokes have alpha
    else:
        image[:, :, :3] = (255 - ink if style == "black-on-white" else ink)[:, :, None]
        image[:, :, 3] = 255
    return image


def skeleton(digit: np.ndarray) -> tuple[np.ndarray, np.ndarray, Image.Image]:
    """A 28 x 28 uint8 MNIST digit's skeleton pixel rows and columns at UP x, and its filled parts (loops written
    solid: an opening by BLOB) as an L mask."""
    shape = Image.fromarray(digit).resize((28 * UP, 28 * UP), Image.Resampling.BICUBIC).point(lambda v: 255 * (v > 127))
    blob = Image.fromarray(rank_filter(rank_filter(np.asarray(shape), BLOB, np.minimum), BLOB, np.maximum))
    ys, xs = np.nonzero(thin(np.asarray(shape) > 0))
    return ys, xs, blob


def draw(digit: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One 28 x 28 uint8 MNIST digit -> a 280 x 280 RGBA uint8 drawing of it, and the conditions it was drawn in."""
    ys, xs, blob = skeleton(digit)
    if len(ys) == 0:
        raise MnistEdgeError("the digit has no strokes to draw")
    style = str(rng.choice(STYLES))
    thickness = str(rng.choice(list(THICKNESS_BUCKETS)))
    height = float(rng.uniform(*HEIGHT_RANGE))
    pen = max(2.0, height * rng.uniform(*THICKNESS_BUCKETS[thickness]))
    by, bx = np.nonzero(np.asarray(blob))
    all_y, all_x = np.concatenate([ys, by]), np.concatenate([xs, bx])  # the layout must hold the filled parts too
    y0, x0 = all_y.min(), all_x.min()
    span_y, span_x = max(all_y.max() - y0, UP), all_x.max() - x0
    scale = (height - pen) / span_y
    scale = min(scale, (CANVAS - 2 * MARGIN - pen) / max(span_x, 1))  # a wide digit must fit across too
    box_w, box_h = span_x * scale + pen, span_y * scale + pen
    left = rng.uniform(MARGIN, max(MARGIN, CANVAS - MARGIN - box_w))  # max(): rounding on a full-width digit
    top = rng.uniform(MARGIN, max(MARGIN, CANVAS - MARGIN - box_h))
    # Pen positions on the supersampled canvas; a pen of width `pen` centred on the skeleton.
    s = SUPERSAMPLE
    px = ((xs - x0) * scale + left + pen / 2) * s
    py = ((ys - y0) * scale + top + pen / 2) * s
    index = -np.ones((28 * UP + 2, 28 * UP + 2), dtype=np.int64)
    index[ys + 1, xs + 1] = np.arange(len(ys))
    layer = Image.new("L", (CANVAS * s, CANVAS * s), 0)
    pencil = ImageDraw.Draw(layer)
    r = pen * s / 2
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each 8-neighbour pair once: the pen's path
        for a, b in zip(index[ys + 1, xs + 1], index[ys + 1 + dy, xs + 1 + dx]):
            if b >= 0:
                pencil.line([(px[a], py[a]), (px[b], py[b])], fill=255, width=max(1, round(2 * r)))
    for x, y in zip(px, py):  # round caps and joints, like a brush
        pencil.ellipse([x - r, y - r, x + r, y + r], fill=255)
    if len(by):
        side = max(1, round(28 * UP * scale * s))
        corner = (round((left + pen / 2 - x0 * scale) * s), round((top + pen / 2 - y0 * scale) * s))
        layer.paste(255, (*corner, corner[0] + side, corner[1] + side), blob.resize((side, side), Image.Resampling.BILINEAR))
    image = paint(np.asarray(layer.reduce(s)), style, rng)
    offset = (round(left + box_w / 2 - CANVAS / 2), round(top + box_h / 2 - CANVAS / 2))
    conditions = {
        "style": style,
        "height_px": round(box_h),
        "size": _bucket(box_h, SIZE_BUCKETS),
        "thickness_px": round(pen, 1),
        "thickness": thickness,
        "offset": offset,
        "off_centre": max(abs(offset[0]), abs(offset[1])) > CANVAS // 8,
    }
    return image, conditions


def iter_drawn(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> Iterator[Sample]:
    """The first `count` digits drawn one at a time, as (RGBA image, label, conditions); sample i depends only on (seed, i)."""
    for i in range(min(count, len(images))):
        image, conditions = draw(images[i], np.random.default_rng([seed, i]))
        yield image, int(labels[i]), {"index": i, **conditions}


def drawn_set(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[Sample]:
    """`iter_drawn` as a list."""
    return list(iter_drawn(images, labels, count, seed))


def _redraw_chunk(job: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    from mnist_edge.runtime.preprocess import normalize

    digits, indices, seed = job
    out = np.empty((len(digits), 28, 28, 1), dtype=np.float32)
    for k, (digit, index) in enumerate(zip(digits, indices)):
        # A stream of its own (the 1), so training drawings never repeat the evaluation set's conditions.
        out[k] = normalize(draw(digit, np.random.default_rng([seed, 1, int(index)]))[0])
    return out


def in_processes(work, jobs: list, *, items: int, desc: str, workers: int = 2) -> list:
    """`work` over `jobs` in spawned processes, with a progress bar; in this process when there are few `items`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    if items <= INLINE_ITEMS:
        return [work(job) for job in jobs]
    # spawn, not fork: the parent has TensorFlow's threads running, which a fork would copy mid-flight.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(tqdm(pool.map(work, jobs), total=len(jobs), desc=desc, unit="chunk"))


def redraw(digits: np.ndarray, indices: np.ndarray, *, seed: int, workers: int = 2) -> np.ndarray:
    """Training digits drawn on a canvas and normalized as the API would: float32 N x 28 x 28 x 1, deterministic."""
    chunk = 250
    jobs = [(digits[i : i + chunk], indices[i : i + chunk], seed) for i in range(0, len(digits), chunk)]
    parts = in_processes(_redraw_chunk, jobs, items=len(digits), desc="drawing", workers=workers)
    return np.concatenate(parts) if parts else np.empty((0, 28, 28, 1), np.float32)


def to_png(image: np.ndarray) -> bytes:
    """An RGBA array as PNG bytes (what a browser uploads)."""
    return encoded(image)


def summarize(results: Sequence[tuple[dict, bool]]) -> dict:
    """(conditions, correct) pairs -> overall accuracy and accuracy per style, size and thickness."""
    groups: dict[str, dict[str, list[bool]]] = {g: defaultdict(list) for g in GROUPS}
    for conditions, correct in results:
        for g in GROUPS:
            groups[g][conditions[g]].append(correct)
    summary = {"count": len(results), "accuracy": float(np.mean([c for _, c in results])) if results else 0.0}
    for g in GROUPS:
        summary[f"by_{g}"] = {k: {"count": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(groups[g].items())}
    return summary


def accuracy(predict: Callable[[np.ndarray], np.ndarray], samples: Sequence[Sample], *,
             threshold: float | None = None) -> dict:
    """Accuracy of a backend's predict on drawn samples through `preprocess`, in process (no HTTP); with a
    not-a-digit threshold, also the share of them answered is_digit: false ("false_rejection")."""
    batch = np.concatenate([preprocess(image) for image, _, _ in samples])
    labels = np.array([label for _, label, _ in samples])
    probabilities, digit_score = split(predict(batch))
    correct = probabilities.argmax(axis=1) == labels  # the digit read, as the API's `digit`
    summary = summarize([(conditions, bool(c)) for (_, _, conditions), c in zip(samples, correct)])
    if threshold is not None:
        summary["false_rejection"] = float((digit_score < threshold).mean())
    return summary
