"""One line of handwriting -> its characters, left to right: the ink cut into pieces the model reads one at a time.

The ink is found as for one digit (runtime/preprocess.find_ink), then split into 8-connected components. Pieces far
smaller than the line are specks or dots and dropped. A short stroke over another's columns joins it (a 5's flag, a
7's bar). What is left are the line's character groups, left to right; a group wide enough to be touching digits is
cut, along the writing's lean, at the low points of its column profile; so is one whose strokes are too long for one
digit, however narrow (touching 1s). Groups and cut parts are the line's atoms.

Every run of neighbouring atoms that could be one character (not too wide for its height, no gap wider than a pen's
skip) is a candidate; all are normalized by the shared preprocessing and read by the model in one batch, and the
reading whose characters the model is surest of, all told, wins (`choose`, a shortest path over the atoms). No
second model: the digit classifier is the judge of where one digit ends.

The constants were set on numbers of MNIST training digits only (`mnist-edge numbers-eval --tune`); the figures in
docs/api.md come from test digits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from mnist_edge.runtime.components import component_runs
from mnist_edge.runtime.errors import PayloadTooLargeError
from mnist_edge.runtime.preprocess import Ink, fit_crop, pen_width

# A piece whose longest side is under this share of the line's height is a speck or a dot, not a stroke: a full stop
# is about a pen's width (~0.1 of a digit's height), while the shortest stroke that matters, a 5's flag or a 7's bar,
# is a third of it or more.
SPECK = 0.22
# A stroke joins a character before the model is asked when the narrower of the two has this share of its columns
# under the other ...
OVERLAP = 0.5
# ... and one of them is shorter than this share of the line: a flag, a bar, a broken-off part. Two tall strokes
# sharing columns (a 1 tucked under a 7's bar, a slanted neighbour) are left for the model to join or not.
TALL = 0.6
# A group wider than this share of the line's height may be digits that touch, and is cut; narrower ones never are
# (a round 0 is ~0.9). Lower finds touching pairs of narrow digits (61, 11) too, at the price of reading every
# wide digit several ways: on 100 training numbers of each kind, 0.85 read 49 % of touching numbers exactly with
# 9.6 candidates per separate number, 1.0 41 % with 4.7 (one per digit), separate and photos alike. The 6-digit
# number of `mnist-edge bench` costs about a candidate's normalization and inference more per extra candidate. With
# the model trained on cut-out pieces (train/pieces.py) and IN_A_NUMBER 0.3, on 200 training numbers of each kind:
# 1.0 55.0 % touching, 0.85 60.5 %, 0.7 62.5 % (separate 95.0 / 94.5 / 94.5 %); the bench's number then has 6, 14 and
# 27 candidates, and finding and cutting its ink takes 1.42, 2.34 and 3.82 ms: 1.0 keeps /v1/read near its latency
# target.
WIDE = 1.0
# A group whose strokes run longer than this many line heights is cut too, however narrow: one digit's strokes run 1-3.5
# (an 8's the longest; 2.4 is the median), two touching digits' mostly more, and a pair of narrow digits (11, 91, 17)
# is no wider than one 0. The length is the group's ink over the line's pen width (`preprocess.pen_width`). Of the
# digits of 200 separate training numbers 3.3 % are longer than 3.6 and 3.8 % wider than WIDE; of the groups of 200
# touching ones, 42 % and 40 %. On the tune sets (200 separate, 200 touching, 400 photos, 3,000 single digits; and
# 400 / 400 / 300 made with another seed), touching numbers read exactly 57.0 -> 61.0 % and 57.0 -> 60.5 %, separate,
# photos and single digits within one number of before; 3.4 and 3.2 read 61.5 and 63.5 % but also cut a digit of the
# bench's number (6 -> 15 candidates), 3.8 the same as 3.6.
LONG = 3.6
# A cut leaves every part at least this share of the line's height wide: the narrowest digit, a 1, is ~0.15 plus
# its pen; a thinner sliver is a stroke's edge, not a digit.
MIN_PART = 0.2
CUT_SPACING = 0.1  # two cuts closer than this share of the line's height are one low point's ragged floor
# Low points tried per line height of a group's width (a digit is ~0.6 of it wide, so two or three per digit: the
# deepest low point is often not where two digits meet) ...
CUTS_PER_LINE = 5
MAX_CUTS = 16  # ... and at most this many, so a long chain of touching digits costs a bounded batch
# A candidate made of several atoms (parts of a cut group, or neighbouring groups whose strokes do not quite meet:
# a 0 whose pen skipped, a 5 whose flag stands off) is at most this much wider than tall, as the widest digits, and
# its atoms at most this far apart (of the line's height): a pen's skip, never the gap between digits written apart.
MAX_ASPECT = 1.4
JOIN_GAP = 0.12
# A whole line no wider than this for its height may be one digit (a 5 whose flag stands far off): it is offered as
# one character too, unless two strokes as tall as digits stand further apart than APART of the line's height
# (`_apart`): a 1 written beside a 5 was read as one 5, while a 4 whose two strokes stand 0.22 apart is one digit.
# On 300 training numbers of each kind and 2,000 single digits (`numbers-eval --tune --singles 2000`): without the
# rule separate 94.00 %, photos 87.67 %, singles 99.90 %; 0.2 94.33 / 88.33 / 99.85; 0.25 94.33 / 88.33 / 99.90;
# 0.3 and 0.4 94.00 / 88.33-87.67 / 99.90. SINGLE_ASPECT 1.8 keeps a 5 whose flag runs far right one digit: on
# `numbers-eval --tune --count 200 --singles 3000`, 1.6 and 1.8 read the same numbers (separate 94.0 %, touching 45.0 %,
# photos 90.0 %) and singles 99.90 and 99.93 %.
SINGLE_ASPECT = 1.8
APART = 0.25
JOINS = 2  # at most this many character groups per allowed character: more is refused before any is read
# Each character of a reading costs this much log probability, so a digit read surely as a whole is not lost to two
# halves each read a little more surely. On training numbers 0 misread 0.7 % of single digits as two, 0.05 none.
PER_PIECE = 0.05
# The column profile is smoothed over this share of the line's height before its low points are taken, so the
# ragged edge of one stroke does not count as a gap.
SMOOTH = 0.06
# A reading scores each piece by log P(its digit), P = ten-digit probability x digit score; this floor keeps a
# piece the model rejects outright from sinking a reading by itself (log 0).
FLOOR = 1e-6
# Handwriting leans (MNIST's 1s up to ~30 degrees); cuts are taken along the measured lean, never past this many
# columns per row (27 degrees): a steeper "lean" is a line's layout, not its digits.
MAX_SLANT = 0.5
# The line's height in pixels it is cut at, at least: a 200 px line is reduced 4 x. Every character ends at 20 px, so
# over twice that keeps every stroke. On `numbers-eval --tune --count 200 --singles 3000`, 48 and 64 read about as
# many exactly (separate 94.5 / 94.0 %, touching 42.0 / 45.0 %, photos 89.5 / 90.0 %, singles 99.90 / 99.93 %; with
# `--seed 7` separate 95.0 / 93.0 %, touching 49.0 / 48.5 %), and 48 cuts the 172 px line of `mnist-edge bench`'s
# number at a third of its size instead of half: 4/9 of the pixels to label and normalize.
LINE_PIXELS = 48
# A character read among others is a digit from this digit score on, where the model's own threshold is higher. That
# threshold (the manifest's, ~0.48) is set for a drawing alone, where "not a digit" is common; in a line of digits a
# mark is more likely one, and a cut-out digit (its neighbour's edge in its box, its pen thinned by the line's
# reduction) scores lower than the same digit drawn alone. The model is trained to score two digits in one box, or a
# part of one, low (train/pieces.py), so what passes here is rarely that. On numbers of training digits (200
# separate, 200 touching, 400 photos; and a second set of 400, 400 and 300 with another seed), 0.3 read 95.0 / 97.25 %
# separate, 55.0 / 55.0 % touching and 90.75 / 88.33 % photos exactly; 0.15 95.0 / 97.75, 57.0 / 57.0 and 92.0 /
# 88.67 %; 0.08 touching 58.0 % on the second set. Drawn letters and words (not-a-digit validation drawings, 400)
# pass 0.3 1.0 % of the time, 0.15 2.75 %, 0.08 5.25 %: 0.15 keeps a letter in a number a non-digit. One character
# alone keeps the model's threshold, as /v1/predict does.
IN_A_NUMBER = 0.15
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
    """A line cut into atoms (characters, or parts of a wide one) and the candidate characters made of runs of them.

    Reading the line is walking from bound 0 to bound `atoms`; edge (i, j, k) steps over atoms i..j-1 as piece k.
    """

    pieces: list[Piece]
    edges: list[tuple[int, int, int]]
    atoms: int


@dataclass(frozen=True)
class _Pixels:
    """A line's ink as pixel lists, grouped by component: rows, columns, and deslanted columns when a cut needs them."""

    ink: np.ndarray  # the line's ink, reduced by `scale`
    scale: int  # image pixels per ink pixel here, each way
    shape: tuple[int, int]  # the image's ink, before the reduction
    origin: tuple[int, int]  # where the line's ink (its rows and columns with any ink) begins in it: top, left
    ys: np.ndarray
    xs: np.ndarray
    ids: np.ndarray  # each pixel's component (0-based)
    members: list[np.ndarray]  # per component, the indices of its pixels in the lists above

    @cached_property
    def upright(self) -> np.ndarray:
        """The column each pixel would have if the writing stood upright (`_slant`); worked out only for a line with
        a group wide enough to cut."""
        slope = _slant(self.ys, self.xs, self.ids, len(self.members))
        # Sheared about the middle row, so the line keeps its place; whole columns, as the image has.
        return self.xs - np.round(slope * (self.ys - (self.ink.shape[0] - 1) / 2)).astype(np.int64)


def _slant(ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, count: int) -> float:
    """Columns gained per row down the page, pooled over the components: how far the writing leans.

    Each component's own covariance (its x against its y), summed, over its y variance, summed: the digits' lean,
    not the line's layout. A vertical cut or a column span then follows the strokes, not the page's columns.
    """
    n = np.bincount(ids, minlength=count).astype(np.float64)
    sy, sx = np.bincount(ids, ys, count), np.bincount(ids, xs, count)
    syy, sxy = np.bincount(ids, ys * ys.astype(np.float64), count), np.bincount(ids, ys * xs.astype(np.float64), count)
    var = (syy - sy * sy / n).sum()
    return float(np.clip((sxy - sx * sy / n).sum() / var, -MAX_SLANT, MAX_SLANT)) if var > 0 else 0.0


def _groups(box: np.ndarray, keep: np.ndarray, line: int) -> list[list[int]]:
    """The kept components (0-based) grouped into characters, ordered by their left edge: a short stroke joins the
    character whose columns it shares (a 5's flag, a 7's bar); two strokes as tall as digits never join here."""
    order = [int(k) for k in np.argsort(box[:, 2], kind="stable") if keep[k]]
    groups: list[list[int]] = []
    spans: list[list[int]] = []  # each group's [top, bottom, left, right]
    for k in order:
        top, bottom, left, right = (int(v) for v in box[k])
        for g, (gt, gb, gl, gr) in enumerate(spans):
            shared = min(right, gr) - max(left, gl) + 1
            short = min(bottom - top, gb - gt) + 1 < TALL * line
            if short and shared >= OVERLAP * min(right - left + 1, gr - gl + 1):
                groups[g].append(k)
                spans[g] = [min(gt, top), max(gb, bottom), min(gl, left), max(gr, right)]
                break
        else:
            groups.append([k])
            spans.append([top, bottom, left, right])
    return [groups[g] for g in np.argsort([s[2] for s in spans], kind="stable")]


def _cuts(profile: np.ndarray, line: int) -> list[int]:
    """Columns (offsets into the profile) where a wide character may be cut: its deepest smoothed low points."""
    width = max(1, round(SMOOTH * line))
    smooth = np.convolve(profile, np.ones(width) / width, mode="same")
    margin = max(1, round(MIN_PART * line))
    inner = np.arange(margin, len(profile) - margin)
    if not len(inner):
        return []
    left, mid, right = smooth[inner - 1], smooth[inner], smooth[inner + 1]
    lows = inner[(mid <= left) & (mid <= right) & ((mid < left) | (mid < right))]
    most = min(MAX_CUTS, round(CUTS_PER_LINE * len(profile) / line))
    chosen: list[int] = []
    apart = max(1, round(CUT_SPACING * line))
    for x in lows[np.argsort(smooth[lows], kind="stable")]:
        if len(chosen) == most:
            break
        if all(abs(int(x) - c) >= apart for c in chosen):
            chosen.append(int(x))
    return sorted(chosen)


def _too_many(found: int, limit: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the image holds {found} {what}; the limit is {limit} characters", limit=limit)


@dataclass(frozen=True)
class _Atom:
    """A run of the line: a character group, or the part of one between two cuts (taken along the writing's lean)."""

    pixels: np.ndarray  # indices into the _Pixels lists
    left: int  # the columns its pixels span, [left, right)
    right: int
    top: int  # and the rows, [top, bottom)
    bottom: int
    group: int  # the character group it was cut from


def _atoms(pixels: _Pixels, box: np.ndarray, groups: list[list[int]], line: int) -> list[_Atom]:
    """Each group as one atom, or cut into several where it is wide enough, or its strokes long enough, to be touching
    digits."""
    atoms = []
    spans = box.tolist()  # the components' [top, bottom, left, right], inclusive
    longest = LONG * line * pen_width(pixels.ink)  # the most ink one digit's strokes hold (one pen writes a line)
    for g, group in enumerate(groups):
        members = pixels.members[group[0]] if len(group) == 1 else np.concatenate([pixels.members[k] for k in group])
        left, right = min(spans[k][2] for k in group), max(spans[k][3] for k in group) + 1
        if right - left <= WIDE * line and pixels.ink[pixels.ys[members], pixels.xs[members]].sum() <= longest:
            top, bottom = min(spans[k][0] for k in group), max(spans[k][1] for k in group) + 1
            atoms.append(_Atom(members, left, right, top, bottom, g))
            continue
        # Cut along the lean: the upright columns' profile, whose low points are where slanted digits meet.
        cols = pixels.upright[members]
        left, right = int(cols.min()), int(cols.max()) + 1
        bounds = [left, *(left + x for x in _cuts(np.bincount(cols - left).astype(np.float32), line)), right]
        for a, b in zip(bounds, bounds[1:]):
            part = members[(cols >= a) & (cols < b)]
            if len(part):
                atoms.append(_atom(pixels, part, g))
    return atoms


def _atom(pixels: _Pixels, members: np.ndarray, group: int) -> _Atom:
    xs, ys = pixels.xs[members], pixels.ys[members]
    return _Atom(members, int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1, group)


def _piece(pixels: _Pixels, atoms: list[_Atom], left: int, top: int, right: int, bottom: int) -> Piece:
    """The ink of a run of atoms (spanning columns [left, right) and rows [top, bottom)), normalized, with its box in
    the image."""
    members = atoms[0].pixels if len(atoms) == 1 else np.concatenate([atom.pixels for atom in atoms])
    crop = pixels.ink[top:bottom, left:right]
    if np.count_nonzero(crop) != len(members):  # other ink in its box (a neighbour's, a speck): only its own pixels
        ys, xs = pixels.ys[members], pixels.xs[members]
        crop = np.zeros((bottom - top, right - left), dtype=np.float32)
        crop[ys - top, xs - left] = pixels.ink[ys, xs]
    return Piece(fit_crop(crop), _box(pixels, left, top, right, bottom))  # the atoms' box is the crop's: no margin


def _box(pixels: _Pixels, left: int, top: int, right: int, bottom: int) -> tuple[int, int, int, int]:
    """[x, y, w, h] of a span of the reduced ink, in the image's ink pixels and inside them."""
    (height, width), k, (y0, x0) = pixels.shape, pixels.scale, pixels.origin
    x, y = min(x0 + left * k, width - 1), min(y0 + top * k, height - 1)
    return x, y, max(1, min(x0 + right * k, width) - x), max(1, min(y0 + bottom * k, height) - y)


def segment(ink: Ink, *, limit: int, single: Callable[[], np.ndarray] | None = None) -> Segmentation:
    """A line's ink (runtime/preprocess.find_ink) -> its atoms and every candidate character made of them; a line of
    far more than `limit` characters is a PayloadTooLargeError before any is normalized.

    `single` gives the whole image as /v1/predict normalizes it. When the line could be one character, that is the
    candidate for all of it: one digit is then read exactly as /v1/predict reads it, specks and all.
    """
    # Every character ends up 20 px tall: the line is cut at a few times that, box-reduced (anti-aliased), whatever
    # size it was written at. Labelling and normalizing a 200 px line's pieces at 1/4 scale is ~10x cheaper.
    scale = max(1, ink.crop.shape[0] // LINE_PIXELS)
    small = np.asarray(Image.fromarray(np.ascontiguousarray(ink.crop)).reduce(scale)) if scale > 1 else ink.crop
    runs = component_runs(small > 0)
    pixels = _Pixels(small, scale, ink.shape, (ink.top, ink.left), *runs.pixels(), runs.members())
    box = runs.boxes()
    heights, widths = box[:, 1] - box[:, 0] + 1, box[:, 3] - box[:, 2] + 1
    line = int(heights.max())  # the tallest piece is a whole digit: every digit spans the line
    keep = np.maximum(heights, widths) >= SPECK * line
    if keep.sum() > PIECES_PER_CHARACTER * limit:
        raise _too_many(int(keep.sum()), limit, "separate strokes")
    groups = _groups(box, keep, line)
    if len(groups) > JOINS * limit:  # even if every neighbour joined one, too many characters
        raise _too_many(len(groups), limit, "characters or more")
    # A digit of several strokes (a 4 broken by its bar) is taller than any of them: the line is its tallest character.
    line = max(int(box[group, 1].max() - box[group, 0].min()) + 1 for group in groups)
    atoms = _atoms(pixels, box, groups, line)
    pieces: list[Piece] = []
    edges: list[tuple[int, int, int]] = []
    for i, first in enumerate(atoms):
        starts_group = i == 0 or atoms[i - 1].group != first.group
        left, right, top, bottom, gap = first.left, first.right, first.top, first.bottom, 0
        for j in range(i + 1, len(atoms) + 1):
            last = atoms[j - 1]  # the run is atoms[i:j]; its extent and widest gap so far, grown by this atom
            if j > i + 1:
                left, right = min(left, last.left), max(right, last.right)
                top, bottom = min(top, last.top), max(bottom, last.bottom)
                gap = max(gap, last.left - atoms[j - 2].right)
            in_group = first.group == last.group
            whole_group = starts_group and in_group and (j == len(atoms) or atoms[j].group != last.group)
            if j > i + 1 and not whole_group:
                if right - left > MAX_ASPECT * (bottom - top):
                    if right - left > MAX_ASPECT * small.shape[0] and not (starts_group and in_group):
                        break  # wider than any character the line can hold, and longer runs only grow wider; but
                        # a group begun at atom i is still ahead, and is a candidate whole however wide it is
                    continue  # too wide for its height; a longer run may be taller (a flag above its 5)
                if gap > JOIN_GAP * line:
                    break  # a gap between written characters: no character spans it
            edges.append((i, j, len(pieces)))
            pieces.append(_piece(pixels, atoms[i:j], left, top, right, bottom))
    if single is not None and not _apart(atoms, line):
        _add_single(pixels, atoms, pieces, edges, single)
    return Segmentation(pieces, edges, len(atoms))


def _apart(atoms: list[_Atom], line: int) -> bool:
    """Whether the line holds two characters written apart: a gap over APART of its height with a stroke as
    tall as a digit on each side of it (a 5's far flag is short, so it may still be one character with its 5)."""
    tall = [atom.bottom - atom.top >= TALL * line for atom in atoms]
    right, tall_before = -1, False
    for atom, is_tall in sorted(zip(atoms, tall), key=lambda pair: pair[0].left):
        if tall_before and atom.left - right > APART * line and any(
                t for a, t in zip(atoms, tall) if a.left >= atom.left):
            return True
        right, tall_before = max(right, atom.right), tall_before or is_tall
    return False


def _add_single(pixels: _Pixels, atoms: list[_Atom], pieces: list[Piece], edges: list, single) -> None:
    """The whole image read as one character, as the candidate for the whole line, if its shape allows one."""
    left, right = min(atom.left for atom in atoms), max(atom.right for atom in atoms)
    top, bottom = min(atom.top for atom in atoms), max(atom.bottom for atom in atoms)
    if right - left > SINGLE_ASPECT * (bottom - top):
        return
    piece = Piece(single(), _box(pixels, left, top, right, bottom))
    whole = [k for i, j, k in edges if i == 0 and j == len(atoms)]
    if whole:
        pieces[whole[0]] = piece
    else:
        edges.append((0, len(atoms), len(pieces)))
        pieces.append(piece)


def choose(segmentation: Segmentation, probability: np.ndarray) -> list[int]:
    """The pieces of the best reading, left to right: the one whose characters the model is surest of, all told.

    `probability` holds each piece's P(its most likely digit), the ten-digit probability times the digit score; a
    reading scores the sum of its pieces' log P, less PER_PIECE for each (a cut must earn its keep).
    """
    score = np.log(np.maximum(probability, FLOOR)) - PER_PIECE
    best = np.full(segmentation.atoms + 1, -np.inf)
    best[0] = 0.0
    step: list[tuple[int, int] | None] = [None] * (segmentation.atoms + 1)
    for i, j, k in sorted(segmentation.edges, key=lambda edge: edge[1]):
        if best[i] + score[k] > best[j]:
            best[j], step[j] = best[i] + score[k], (i, k)
    chosen, at = [], segmentation.atoms
    while at:
        i, k = step[at]
        chosen.append(k)
        at = i
    return chosen[::-1]
