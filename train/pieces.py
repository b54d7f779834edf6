"""Characters cut out of handwritten numbers as POST /v1/read cuts them, labelled by what they hold: training images
that show the model a digit as segmentation hands it over (a neighbour's edge in its box, a stroke cut short), and
teach it that two digits in one box, or a part of one, are not a digit.

A number is written on the wide canvas by train/numbers.py from training digits (digits apart or touching), then read
as the route reads it: decoded from its PNG, its ink found and cut by runtime/segment.py into every candidate it
offers the model. Each candidate's box is compared with the strokes of each digit written (numbers.canvas_line knows
which digit every stroke pixel belongs to). Photos of numbers are never cut into training pieces: the photo figure of
`numbers-eval` measures how the pieces carry over to what they never showed.
"""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.answers import NOT_A_DIGIT
from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.preprocess import find_ink, normalize
from mnist_edge.runtime.segment import segment
from mnist_edge.train.drawn import in_processes, to_png
from mnist_edge.train.numbers import DIGITS, canvas_line

# A candidate is digit k when its box holds at least WHOLE of k's stroke pixels and at most STRAY of any other
# digit's: a cut that left a little of a neighbour's edge is still a digit to read.
WHOLE = 0.85
STRAY = 0.2
# It is not a digit when it holds MERGED or more of two digits' strokes (the pair the reading must not take for one
# digit), or less than PART of any digit and little of the rest (a stroke cut off one). Candidates in between (most
# of one digit and a good part of another) are left out: no label is right for them.
MERGED = 0.5
PART = 0.5
STREAM = 7  # the numbers' own random stream: never the same numbers as numbers-eval's tuning or held-out ones
CHUNK = 100  # numbers per job


def label(owners: np.ndarray, box: list[int] | tuple[int, ...], strokes: np.ndarray) -> int | None:
    """The label of a candidate with `box` ([x, y, w, h] in the image) on a number whose stroke pixels belong to the
    digits in `owners` (-1 for none), each digit having `strokes[k]` of them: its digit's index, NOT_A_DIGIT, or None
    when no label fits."""
    x, y, w, h = box
    inside = np.bincount(owners[y : y + h, x : x + w].ravel() + 1, minlength=len(strokes) + 1)[1:]
    share = inside / np.maximum(strokes, 1)
    held = np.sort(share)[::-1]
    second = held[1] if len(held) > 1 else 0.0
    if held[0] >= WHOLE and second <= STRAY:
        return int(np.argmax(share))
    if second >= MERGED or (held[0] < PART and second <= STRAY):
        return NOT_A_DIGIT
    return None


def number_pieces(digits: list[np.ndarray], labels: list[int], rng: np.random.Generator, *,
                  touching: bool) -> tuple[list[np.ndarray], list[int]]:
    """One number written and cut as /v1/read cuts it: each labelled candidate's normalized image and its label."""
    image, owners, _ = canvas_line(digits, rng, touching=touching)
    pixels = decode_image(to_png(image))
    found = segment(find_ink(pixels, line=True), limit=32, single=lambda: normalize(pixels))
    strokes = np.bincount(owners.ravel() + 1, minlength=len(digits) + 1)[1:]
    images, answers = [], []
    for piece in found.pieces:
        which = label(owners, piece.box, strokes)
        if which is not None:
            images.append(piece.image)
            answers.append(NOT_A_DIGIT if which == NOT_A_DIGIT else labels[which])
    return images, answers


def _chunk(job: list[tuple[int, np.ndarray, np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    out, answers = [], []
    for i, digits, labels, seed in job:
        got, said = number_pieces(list(digits), [int(d) for d in labels], np.random.default_rng([seed, STREAM, 1, i]),
                                  touching=bool(i % 2))
        out.extend(got)
        answers.extend(said)
    empty = np.empty((0, 28, 28, 1), np.float32)
    return (np.stack(out) if out else empty), np.array(answers, dtype=np.int64)


def cut_pieces(images: np.ndarray, labels: np.ndarray, numbers: int, *, seed: int,
               workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The labelled candidates of `numbers` numbers (half of them touching) written from `images` (uint8 MNIST
    digits) with `labels`: float32 N x 28 x 28 x 1 and int labels (10 for not a digit). Number i depends only on
    (seed, i)."""
    jobs = []
    for i in range(numbers):
        rng = np.random.default_rng([seed, STREAM, 0, i])  # which digits; how they are written has a stream of its own
        picked = rng.integers(len(images), size=int(rng.integers(DIGITS[0], DIGITS[1] + 1)))
        jobs.append((i, images[picked], labels[picked], seed))
    chunks = [jobs[start : start + CHUNK] for start in range(0, numbers, CHUNK)]
    parts = in_processes(_chunk, chunks, items=numbers * 4, desc="cut pieces", workers=workers)
    if not parts:
        return np.empty((0, 28, 28, 1), np.float32), np.empty(0, np.int64)
    pieces, answers = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    # A touching number offers many more wrong candidates than digits: as many of them are kept as there are digits,
    # so the cut-out digits are not outnumbered by what they are told apart from.
    digits, others = np.flatnonzero(answers != NOT_A_DIGIT), np.flatnonzero(answers == NOT_A_DIGIT)
    others = np.random.default_rng([seed, STREAM, 2]).permutation(others)[: len(digits)]
    keep = np.sort(np.concatenate([digits, others]))
    return pieces[keep], answers[keep]
