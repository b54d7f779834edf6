"""train/negatives.py: every not-a-digit generator draws something the API can read, the same way each time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_edge.runtime.preprocess import normalize
from mnist_edge.runtime.errors import DataError, MnistEdgeError
from mnist_edge.train import negatives
from mnist_edge.train.negatives import GENERATORS, HELD_OUT, TRAINING, glyph, negative, negative_images, word


@pytest.mark.parametrize("name", list(GENERATORS))
def test_every_generator_draws_a_canvas_image_that_preprocess_accepts(mnist, name):
    images = [negative(name, i, mnist.x_test[:500], mnist.y_test[:500], seed=0, stream="evaluation") for i in range(4)]
    for image in images:
        assert image.shape == (280, 280, 4) and image.dtype == np.uint8
        assert normalize(image).max() > 0.5  # it has ink where the model looks
    assert len({image.tobytes() for image in images}) == 4  # no two alike


def test_samples_depend_only_on_seed_stream_and_index(mnist):
    digits, labels = mnist.x_test[:500], mnist.y_test[:500]
    again = negative("pairs", 3, digits, labels, seed=0, stream="evaluation")
    np.testing.assert_array_equal(negative("pairs", 3, digits, labels, seed=0, stream="evaluation"), again)
    assert not np.array_equal(negative("pairs", 3, digits, labels, seed=0, stream="train"), again)


def test_held_out_generators_never_train():
    assert set(HELD_OUT) and set(TRAINING) and not set(HELD_OUT) & set(TRAINING)
    assert set(HELD_OUT) | set(TRAINING) == set(GENERATORS)


def test_glyphs_fit_the_mnist_box():
    image = glyph("W", np.random.default_rng(0))
    ys, xs = np.nonzero(image > 127)
    assert image.shape == (28, 28) and max(np.ptp(ys), np.ptp(xs)) in range(17, 21)


def test_negative_images_are_normalized_model_inputs(mnist):
    images, kinds = negative_images(("faces", "shapes"), 3, mnist.x_test[:100], mnist.y_test[:100], seed=0,
                                    stream="validation", workers=1)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.float32
    assert sorted(set(kinds)) == ["faces", "shapes"] and 0 <= images.min() and images.max() <= 1


def test_a_font_without_the_letter_draws_no_glyph(monkeypatch):
    """A glyph the font lacks (its .notdef box) is refused, so the generator draws another, never a box."""
    monkeypatch.setattr(negatives, "fonts", lambda: ("/usr/share/fonts/truetype/dejavu/DejaVuMathTeXGyre.ttf",))
    if not Path(negatives.fonts()[0]).is_file():
        pytest.skip("DejaVu Math TeX Gyre (Debian fonts-dejavu-extra) is not installed")
    with pytest.raises(MnistEdgeError, match="no ink"):
        glyph("Ж", np.random.default_rng(0))  # a math font: Greek, no Cyrillic
    assert glyph("W", np.random.default_rng(0)).max() > 127


def test_without_system_fonts_the_letters_stay_latin(monkeypatch):
    monkeypatch.setattr(negatives, "fonts", lambda: ())
    assert negatives.alphabet() == negatives.LETTERS
    assert word(np.random.default_rng(1)).shape == (28, 28)  # Pillow's own font still draws a word


def test_words_are_wider_than_tall():
    ys, xs = np.nonzero(word(np.random.default_rng(2)) > 127)
    assert np.ptp(xs) > 2 * np.ptp(ys)


@pytest.mark.parametrize(("labels", "named"), [([1, 7, 1], "fragments"), ([4, 4], "pairs")])
def test_digits_that_cannot_make_a_generator_are_one_line(mnist, labels, named):
    digits = mnist.x_test[: len(labels)]
    with pytest.raises(DataError, match=f"not-a-digit {named} .*a larger --limit"):
        negative_images(tuple(GENERATORS), 2, digits, np.array(labels, np.uint8), seed=0, stream="validation", workers=1)
    empty, _ = negative_images(tuple(GENERATORS), 0, digits[:0], np.array([], np.uint8), seed=0, stream="validation")
    assert empty.shape == (0, 28, 28, 1)  # none asked for: nothing to check
