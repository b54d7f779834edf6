"""runtime/segment.py: components, which pieces make one character, specks, cuts of touching digits, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from api_fixtures import png

from mnist_edge.runtime.preprocess import find_ink
from mnist_edge.runtime.components import components
from mnist_edge.runtime.segment import WIDE, segment

PEN = 14


def written(*strokes: list[tuple[float, float]], size: tuple[int, int] = (560, 280), dots=()) -> np.ndarray:
    """Black pen strokes (and round dots (x, y, radius)) on a white page, as a grey uint8 image."""
    page = Image.new("L", size, 255)
    pen = ImageDraw.Draw(page)
    for path in strokes:
        pen.line(path, fill=0, width=PEN, joint="curve")
    for x, y, r in dots:
        pen.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(page)


def shifted(path: list[tuple[float, float]], dx: float) -> list[tuple[float, float]]:
    return [(x + dx, y) for x, y in path]


ONE = [(100, 60), (100, 220)]
# A 5 as many write it: the body (down, round the belly) and, lifted, the flag across the top.
FIVE_BODY = [(90, 60), (85, 130), (130, 120), (165, 150), (160, 200), (120, 220), (85, 205)]
FIVE_FLAG = [(112, 56), (170, 52)]
ZERO = [(120, 60), (160, 80), (170, 140), (160, 200), (120, 220), (80, 200), (70, 140), (80, 80), (120, 60)]
EIGHT = [(120, 60), (90, 75), (95, 120), (120, 135), (150, 160), (155, 200), (120, 220), (85, 200), (90, 160),
         (120, 135), (145, 120), (150, 75), (120, 60)]


def atoms(image: np.ndarray) -> int:
    """How many atoms (characters, or parts of a wide one) the segmentation cuts the line into."""
    return segment(find_ink(image, line=True), limit=32).atoms


def read(client, image: np.ndarray) -> tuple[str, int]:
    """The number /v1/read finds in a drawing, and how many characters it found."""
    body = client.post("/v1/read", data=png(image), content_type="image/png").json
    return body["number"], len(body["digits"])


def test_a_five_whose_flag_is_a_separate_stroke_is_one_character(client):
    image = written(FIVE_BODY, FIVE_FLAG)
    assert components(find_ink(image, line=True).crop > 0)[1] == 2  # two strokes, apart
    assert atoms(image) == 1  # the flag is short and above the body: one character before the model is asked
    assert read(client, image) == ("5", 1)


def test_a_flag_that_stands_off_is_joined_by_the_model(client):
    flag = [(150, 62), (215, 55)]  # begun past the body's right edge: no shared columns
    image = written(FIVE_BODY, flag)
    found = segment(find_ink(image, line=True), limit=32)
    assert found.atoms == 2 and (0, 2) in {edge[:2] for edge in found.edges}
    assert read(client, image) == ("5", 1)


@pytest.mark.parametrize(("strokes", "pieces", "digit"), [
    # A 4: the angle, then the upright, broken where it crosses the bar (the pen skipped).
    (([(95, 60), (80, 160), (190, 160)], [(160, 60), (160, 145)], [(160, 176), (160, 230)]), 3, "4"),
    (([(70, 60), (180, 60)], [(188, 74), (115, 230)]), 2, "7"),  # a 7: the bar, then the stem, lifted between
    (([(70, 60), (180, 60), (110, 230)], [(100, 145), (165, 145)]), 1, "7"),  # a crossed 7: the bar crosses the stem
])
def test_digits_of_several_strokes_are_one_character(client, strokes, pieces, digit):
    image = written(*strokes)
    assert components(find_ink(image, line=True).crop > 0)[1] == pieces
    assert read(client, image) == (digit, 1)


def test_ones_with_a_gap_are_two_characters_never_one(client):
    image = written(ONE, shifted(ONE, 120))
    found = segment(find_ink(image, line=True), limit=32)
    assert found.atoms == 2 and sorted(edge[:2] for edge in found.edges) == [(0, 1), (1, 2)]
    assert read(client, image) == ("11", 2)


def test_a_dot_between_digits_is_dropped(client):
    image = written(ONE, shifted(ONE, 200), dots=[(200, 215, 8)])
    assert read(client, image) == ("11", 2)
    found = segment(find_ink(image, line=True), limit=32)
    assert found.atoms == 2
    for piece in found.pieces:  # no candidate holds the dot: both are the width of a stroke
        assert piece.box[2] <= PEN + 4


def test_a_speck_is_no_character_and_the_tallest_piece_sets_the_line(client):
    image = written(ZERO, dots=[(400, 140, 3)])
    assert all(piece.box[0] + piece.box[2] < 390 for piece in segment(find_ink(image, line=True), limit=32).pieces)
    assert read(client, image) == ("0", 1)


def test_a_flat_zero_cut_into_parts_is_still_offered_whole(client):
    flat = [(x, 140 + (y - 140) * 0.45) for x, y in shifted([(2 * x - 120, y) for x, y in ZERO], 60)]  # 2.3 x wide
    found = segment(find_ink(written(flat), line=True), limit=32)
    assert found.atoms > 1 and (0, found.atoms) in {edge[:2] for edge in found.edges}
    assert read(client, written(flat)) == ("0", 1)


def test_touching_zeros_are_split(client):
    image = written(ZERO, shifted(ZERO, 98))  # the second's left side runs along the first's right side
    assert components(find_ink(image, line=True).crop > 0)[1] == 1
    assert read(client, image) == ("00", 2)
    found = segment(find_ink(image, line=True), limit=32)
    spans = {edge[:2] for edge in found.edges}
    assert (0, found.atoms) in spans  # read as it is, one character ...
    assert any((0, j) in spans and (j, found.atoms) in spans for j in range(1, found.atoms))  # ... or cut in two


def test_touching_digits_no_wider_than_one_are_cut_for_their_length(client):
    pair = written(EIGHT, shifted(EIGHT, 80))  # two narrow 8s side by side, touching: no wider than the line is tall
    ink = find_ink(pair, line=True)
    assert components(ink.crop > 0)[1] == 1 and ink.crop.shape[1] < ink.crop.shape[0] * WIDE
    found = segment(ink, limit=32)
    spans = {edge[:2] for edge in found.edges}
    assert found.atoms > 1 and any((0, j) in spans and (j, found.atoms) in spans for j in range(1, found.atoms))
    assert read(client, pair) == ("88", 2)
    assert atoms(written(EIGHT)) == 1  # one 8, the longest digit, is not cut


def test_every_box_lies_inside_the_image():
    rng = np.random.default_rng(0)
    for _ in range(10):
        strokes = [shifted(path, float(rng.uniform(-80, 420))) for path in (ONE, ZERO, FIVE_BODY, FIVE_FLAG)]
        image = written(*strokes, dots=[(float(rng.uniform(0, 560)), float(rng.uniform(0, 280)), 5)])
        ink = find_ink(image, line=True)
        for piece in segment(ink, limit=32).pieces:
            x, y, w, h = piece.box
            assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= image.shape[1] and y + h <= image.shape[0]
            assert ink.crop[max(0, y - ink.top) : y + h - ink.top, max(0, x - ink.left) : x + w - ink.left].any()
            assert piece.image.shape == (28, 28, 1)


def test_two_tall_strokes_written_apart_are_never_offered_as_one_character():
    whole = np.zeros((28, 28, 1), np.float32)  # what /v1/predict would read; here only whether it is offered
    ink = find_ink(written(ONE, shifted(FIVE_BODY, 100), size=(340, 280)), line=True)  # a 1, a gap, a 5 body
    found = segment(ink, limit=32, single=lambda: whole)
    assert found.atoms == 2 and (0, 2) not in {edge[:2] for edge in found.edges}
    flagged = segment(find_ink(written(FIVE_BODY, [(185, 58), (230, 55)]), line=True), limit=32, single=lambda: whole)
    assert any(piece.image is whole for piece in flagged.pieces)  # a short flag far off may still be the 5's
