"""One line of handwriting -> its characters, left to right: the ink cut into pieces the model reads one at a time.

The ink is found as for one digit (runtime/preprocess.find_ink), then split into 8-connected components. Pieces that
share most of their columns are one character (a 5's flag, a 4 or 7 drawn in two strokes, a crossed 7); pieces far
smaller than the line are specks or dots and dropped. A character wider than a digit may be several that touch: it
is cut at the low points of its column profile, every way of cutting it is normalized, and the model's own scores
choose the best (`choose`). No second model: the digit classifier is the judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_edge.runtime.errors import BlankImageError, PayloadTooLargeError
from mnist_edge.runtime.preprocess import fit_ink

# A piece whose longest side is under this share of the line's height is a speck or a dot, not a stroke: a full stop
# is about a pen's width (~0.1 of a digit's height), while the shortest stroke that matters, a 5's flag or a 7's bar,
# is a third of it or more.
SPECK = 0.22
# Two pieces are one character when the narrower has this share of its columns under the other: a 5's flag or a 4's
# second stroke lies above or within the body; neighbours written apart share none, slanted ones a sliver.
OVERLAP = 0.5
# A character wider than this share of the line's height may be several digits that touch. MNIST's digits are at
# most ~0.9 as wide as tall (a round 0); two touching ones, ~1.1 or more. Narrower ones are never cut.
WIDE = 0.85
# A cut leaves every part at least this share of the line's height wide: the narrowest digit, a 1, is ~0.15 plus
# its pen; a thinner sliver is a stroke's edge, not a digit.
MIN_PART = 0.2
MAX_CUTS = 4  # low points tried per wide character: enough for three touching digits, 15 pieces to read at most
# The column profile is smoothed over this share of the line's height before its low points are taken, so the
# ragged edge of one stroke does not count as a gap.
SMOOTH = 0.06
# A joint reading scores each piece by log P(its digit), P = ten-digit probability x digit score; this floor keeps a
# piece the model rejects outright from sinking a reading by itself (log 0).
FLOOR = 1e-6
# Strokes one character may be written in (a 4 broken by its bar has three); more pieces than this per allowed
# character is noise or a picture, refused before grouping them costs time.
PIECES_PER_CHARACTER = 8


@dataclass(frozen=True)
class Piece:
    """One candidate character: its ink normalized for the model and its box [x, y, w, h] in the ink's pixels."""

    image: np.ndarray  # float32 28 x 28 x 1
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Segmentation:
    """The candidates of a line and the readings to choose between: one list of piece indices per character group."""

    pieces: list[Piece]
    # Per character group, the possible readings, each a list of indices into `pieces`, left to right.
    readings: list[list[list[int]]]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's horizontal runs of True: row, start column and end column (exclusive), in row-major order."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).view(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


def _union(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of a graph on `count` nodes with edges a-b: each node's smallest member's index."""
    parent = np.arange(count)
    while True:
        low = np.minimum(parent[a], parent[b])
        np.minimum.at(parent, parent[a], low)  # hook each root onto the smaller root it touches
        np.minimum.at(parent, parent[b], low)
        while True:  # pointer jumping: every node straight to its root
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        if np.array_equal(parent[a], parent[b]):
            return parent


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels (0 = background, 1..n) of a boolean image and n: runs joined row to row, numpy only."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    rows, starts, ends = _runs(mask)
    if not len(rows):
        return labels, 0
    stride = mask.shape[1] + 2  # runs as positions in one long line, so one search finds every row's neighbours
    first, last = rows * stride + starts, rows * stride + ends
    # A run touches those in the row above that start by its end and end by its start (diagonals count: 8-connected).
    above = rows - 1
    lo = np.searchsorted(last, above * stride + starts, side="left")
    hi = np.searchsorted(first, above * stride + ends, side="right")
    counts = np.maximum(hi - lo, 0)
    b = np.repeat(np.arange(len(rows)), counts)
    a = np.repeat(lo, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    roots = _union(len(rows), a, b) if len(a) else np.arange(len(rows))
    _, label = np.unique(roots, return_inverse=True)
    lengths = ends - starts
    flat = np.repeat(rows * mask.shape[1] + starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    labels.ravel()[flat] = np.repeat(label + 1, lengths)
    return labels, int(label.max()) + 1


def _boxes(labels: np.ndarray, count: int) -> np.ndarray:
    """count x 4 (top, bottom, left, right), inclusive, of labels 1..count."""
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs] - 1
    box = np.empty((count, 4), dtype=np.int64)
    box[:, 0], box[:, 2] = labels.shape[0], labels.shape[1]
    box[:, 1], box[:, 3] = -1, -1
    np.minimum.at(box[:, 0], ids, ys)
    np.maximum.at(box[:, 1], ids, ys)
    np.minimum.at(box[:, 2], ids, xs)
    np.maximum.at(box[:, 3], ids, xs)
    return box


def _groups(box: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """The kept components (0-based) grouped into characters by shared columns, ordered by their left edge."""
    order = [int(k) for k in np.argsort(box[:, 2], kind="stable") if keep[k]]
    groups: list[list[int]] = []
    spans: list[list[int]] = []  # each group's column span [left, right]
    for k in order:
        left, right = int(box[k, 2]), int(box[k, 3])
        for g, (gl, gr) in enumerate(spans):
            shared = min(right, gr) - max(left, gl) + 1
            if shared >= OVERLAP * min(right - left + 1, gr - gl + 1):
                groups[g].append(k)
                spans[g] = [min(gl, left), max(gr, right)]
                break
        else:
            groups.append([k])
            spans.append([left, right])
    return [groups[g] for g in np.argsort([s[0] for s in spans], kind="stable")]


def _cuts(profile: np.ndarray, height: int) -> list[int]:
    """Columns (offsets into the profile) where a wide character may be cut: its deepest smoothed low points."""
    width = max(1, round(SMOOTH * height))
    smooth = np.convolve(profile, np.ones(width) / width, mode="same")
    margin = max(1, round(MIN_PART * height))
    inner = np.arange(margin, len(profile) - margin)
    if not len(inner):
        return []
    left, mid, right = smooth[inner - 1], smooth[inner], smooth[inner + 1]
    lows = inner[(mid <= left) & (mid <= right) & ((mid < left) | (mid < right))]
    chosen: list[int] = []
    for x in lows[np.argsort(smooth[lows], kind="stable")]:
        if all(abs(int(x) - c) >= margin for c in chosen):
            chosen.append(int(x))
        if len(chosen) == MAX_CUTS:
            break
    return sorted(chosen)


def _too_many(found: int, limit: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the image holds {found} {what}; the limit is {limit} characters", limit=limit)


def segment(ink: np.ndarray, *, limit: int) -> Segmentation:
    """Ink (float32 H x W in [0, 1]) -> the candidate characters and the readings the model chooses between; more than
    `limit` characters is a PayloadTooLargeError."""
    labels, count = components(ink > 0)
    if count == 0:
        raise BlankImageError("the image has no ink on it (blank or a single colour)")
    box = _boxes(labels, count)
    heights, widths = box[:, 1] - box[:, 0] + 1, box[:, 3] - box[:, 2] + 1
    line = int(heights.max())  # the tallest piece is a whole digit: every digit spans the line
    keep = np.maximum(heights, widths) >= SPECK * line
    if keep.sum() > PIECES_PER_CHARACTER * limit:
        raise _too_many(int(keep.sum()), limit, "separate strokes")
    groups = _groups(box, keep)
    if len(groups) > limit:
        raise _too_many(len(groups), limit, "characters or more")
    pieces: list[Piece] = []
    readings: list[list[list[int]]] = []
    for group in groups:
        ids = np.array(group) + 1
        top, bottom = int(box[group, 0].min()), int(box[group, 1].max())
        left, right = int(box[group, 2].min()), int(box[group, 3].max())
        window = ink[top : bottom + 1, left : right + 1]
        own = np.isin(labels[top : bottom + 1, left : right + 1], ids)
        mine = np.where(own, window, np.float32(0))
        bounds = [0, right - left + 1]
        if bounds[1] > WIDE * line:
            bounds[1:1] = _cuts(own.sum(axis=0).astype(np.float32), line)
        index: dict[tuple[int, int], int] = {}
        for i in range(len(bounds)):
            for j in range(i + 1, len(bounds)):
                part = mine[:, bounds[i] : bounds[j]]
                rows = np.flatnonzero(part.any(axis=1))
                if not len(rows):
                    continue
                cols = np.flatnonzero(part.any(axis=0))
                index[i, j] = len(pieces)
                pieces.append(Piece(fit_ink(part), (left + bounds[i] + int(cols[0]), top + int(rows[0]),
                                                    int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1)))
        readings.append(_paths(index, len(bounds) - 1))
    return Segmentation(pieces, readings)


def _paths(index: dict[tuple[int, int], int], end: int) -> list[list[int]]:
    """Every way to walk from bound 0 to `end` through pieces that exist, as lists of piece indices."""
    walks: dict[int, list[list[int]]] = {0: [[]]}
    for j in range(1, end + 1):
        walks[j] = [walk + [index[i, j]] for i in range(j) if (i, j) in index for walk in walks.get(i, [])]
    return walks[end]


def choose(segmentation: Segmentation, probability: np.ndarray) -> list[int]:
    """The pieces of the best reading of each group, left to right: the one whose digits the model is surest of.

    `probability` holds each piece's P(its most likely digit), the ten-digit probability times the digit score.
    """
    logs = np.log(np.maximum(probability, FLOOR))
    chosen: list[int] = []
    for readings in segmentation.readings:
        chosen += max(readings, key=lambda walk: float(logs[walk].sum()))
    return chosen
