"""train/pieces.py: candidates cut from written numbers as /v1/read cuts them, labelled by the strokes they hold."""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.answers import NOT_A_DIGIT
from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.preprocess import find_ink
from mnist_edge.train.drawn import to_png
from mnist_edge.train.numbers import INK, canvas_line, written
from mnist_edge.train.pieces import cut_pieces, label, number_pieces


def _two_digits() -> tuple[np.ndarray, np.ndarray]:
    """Owners of a 10 x 30 line: digit 0 fills columns 2-9, digit 1 columns 14-27."""
    owners = np.full((10, 30), -1, dtype=np.int8)
    owners[1:9, 2:10] = 0
    owners[1:9, 14:28] = 1
    return owners, np.bincount(owners.ravel() + 1, minlength=3)[1:]


def test_a_candidate_is_the_digit_whose_strokes_it_holds():
    owners, strokes = _two_digits()
    assert label(owners, (2, 1, 8, 8), strokes) == 0
    assert label(owners, (14, 0, 14, 10), strokes) == 1
    assert label(owners, (2, 1, 9, 8), strokes) == 0  # the gap beside it changes nothing
    assert label(owners, (2, 1, 13, 8), strokes) == 0  # a sliver of its neighbour (1 of 14 columns) is allowed


def test_two_digits_or_a_part_of_one_are_not_a_digit_and_in_between_has_no_label():
    owners, strokes = _two_digits()
    assert label(owners, (0, 0, 30, 10), strokes) == NOT_A_DIGIT  # both whole
    assert label(owners, (5, 0, 16, 10), strokes) == NOT_A_DIGIT  # over half of each
    assert label(owners, (2, 1, 3, 8), strokes) == NOT_A_DIGIT  # 3 of digit 0's 8 columns
    assert label(owners, (2, 1, 18, 8), strokes) is None  # all of one and 6 of the other's 14 columns
    assert label(owners, (2, 1, 6, 8), strokes) is None  # most of one digit, not enough to call it whole


def test_owners_mark_each_digits_own_strokes(mnist):
    rng = np.random.default_rng(5)
    digits = [mnist.x_train[k] for k in range(4)]
    line, owners, layout = written(digits, rng, height=120, pen=10, touching=True, broken=False)
    assert owners.shape == line.shape and layout["touching"] >= 1
    assert set(np.unique(owners)) == {-1, 0, 1, 2, 3}
    assert (line[owners >= 0] >= INK).all()  # every owned pixel is stroke
    # Left to right: each digit's strokes begin right of the one before's.
    starts = [np.flatnonzero((owners == k).any(axis=0))[0] for k in range(4)]
    assert starts == sorted(starts)


def test_canvas_line_places_the_owners_where_the_strokes_are_painted(mnist):
    seen = set()
    for seed in range(8):
        image, owners, conditions = canvas_line([mnist.x_train[k] for k in range(3)], np.random.default_rng(seed),
                                                touching=False)
        assert owners.shape == image.shape[:2]
        ink = {"canvas": image[:, :, 3], "white-on-black": image[:, :, 0], "black-on-white": 255 - image[:, :, 0]}[
            conditions["style"]]
        painted = (ink[owners >= 0] > 0).mean()
        # A broken stroke's gap still belongs to its digit: it was written, then skipped.
        assert painted == 1.0 if not conditions["broken"] else painted > 0.9
        seen.add(conditions["broken"])
    assert seen == {True, False}


def test_a_canvas_numbers_ink_is_found_at_the_images_own_scale(mnist):
    # label() compares candidate boxes (in the ink's pixels) with owners (in the image's): they must be the same.
    image, owners, _ = canvas_line([mnist.x_train[k] for k in range(6)], np.random.default_rng(3), touching=False)
    assert find_ink(decode_image(to_png(image)), line=True).shape == owners.shape


def test_a_touching_number_gives_its_digits_and_the_pairs_as_not_a_digit(mnist):
    labels = [int(d) for d in mnist.y_train[:3]]
    images, answers = number_pieces([mnist.x_train[k] for k in range(3)], labels, np.random.default_rng(1),
                                    touching=True)
    assert len(images) == len(answers) and all(image.shape == (28, 28, 1) for image in images)
    assert NOT_A_DIGIT in answers  # the touching group read whole holds two digits
    assert {a for a in answers if a != NOT_A_DIGIT} <= set(labels)
    assert all(0.0 <= image.min() and image.max() <= 1.0 for image in images)


def test_cut_pieces_repeat_for_a_seed_and_are_never_mostly_not_digits(mnist):
    first = cut_pieces(mnist.x_train[:500], mnist.y_train[:500], 12, seed=4, workers=1)
    again = cut_pieces(mnist.x_train[:500], mnist.y_train[:500], 12, seed=4, workers=1)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    images, answers = first
    assert images.shape[1:] == (28, 28, 1) and len(images) == len(answers)
    others = int((answers == NOT_A_DIGIT).sum())
    assert 0 < others <= len(answers) - others  # as many not-a-digit candidates as digits, at most
    assert set(answers.tolist()) - {NOT_A_DIGIT} <= set(range(10))
    other = cut_pieces(mnist.x_train[:500], mnist.y_train[:500], 12, seed=5, workers=1)
    assert len(other[1]) != len(answers) or not np.array_equal(other[0], images)
