"""train/numbers.py and `mnist-edge numbers-eval`: numbers that are what they claim, scored through /v1/read."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from mnist_edge.cli import main
from mnist_edge.runtime.components import components
from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.preprocess import find_ink
from mnist_edge.train.drawn import paint
from mnist_edge.train.numbers import KINDS, alone, canvas_line, iter_numbers
from mnist_edge.train.numbers_eval import agrees, miss


@pytest.mark.parametrize("kind", KINDS)
def test_numbers_are_their_labels_digits_and_repeat_exactly(mnist, kind):
    made = list(iter_numbers(mnist.x_test, mnist.y_test, 6, kind=kind, seed=3))
    again = list(iter_numbers(mnist.x_test, mnist.y_test, 6, kind=kind, seed=3))
    assert [n.data for n in made] == [n.data for n in again]
    for number in made:
        assert 2 <= len(number.text) <= 6 and number.text.isdigit()
        assert len(number.alone) == (0 if kind == "photo" else len(number.text))
        with Image.open(io.BytesIO(number.data)) as image:
            assert image.format == ("JPEG" if kind == "photo" else "PNG")
            upright = ImageOps.exif_transpose(image)
            assert upright.height <= upright.width or kind == "photo"


def test_touching_numbers_touch_and_separate_ones_do_not(mnist):
    for kind in ("separate", "touching"):
        for number in iter_numbers(mnist.x_test, mnist.y_test, 8, kind=kind, seed=0):
            ink = find_ink(decode_image(number.data), line=True)
            pieces = components(ink.crop > 0.5)[1]  # the strokes proper, not their anti-aliased fringe
            if number.conditions["broken"]:  # a skipped stroke may part what touches
                continue
            if kind == "touching":
                assert number.conditions["touching"] >= 1 and pieces < len(number.text), number.text
            else:
                assert pieces >= len(number.text), number.text


@pytest.mark.parametrize("touching", [False, True])
def test_each_digit_alone_keeps_its_own_strokes_and_nothing_of_the_others(mnist, touching):
    for seed in range(4):
        image, owners, conditions = canvas_line([mnist.x_test[k] for k in range(4)], np.random.default_rng(seed),
                                                touching=touching)
        cut = alone(image, owners, conditions["style"])
        assert len(cut) == 4
        page = paint(np.zeros((1, 1), np.uint8), conditions["style"], np.random.default_rng())[0, 0]  # no ink
        for k, digit in enumerate(cut):
            own, theirs = owners == k, (owners >= 0) & (owners != k)
            assert digit.shape == image.shape and np.array_equal(digit[own], image[own])
            assert (digit[theirs] == page).all()
            rim = digit[~own & ~theirs]  # the rest: its strokes' anti-aliased edge, or page
            assert ((rim == page).all(axis=1) | (rim == image[~own & ~theirs]).all(axis=1)).all()


def test_training_and_test_numbers_differ(mnist):
    tune = next(iter_numbers(mnist.x_train, mnist.y_train, 1, kind="photo", seed=0, split="tune"))
    held_out = next(iter_numbers(mnist.x_test, mnist.y_test, 1, kind="photo", seed=0))
    assert tune.data != held_out.data


def test_exact_and_agreement_are_strict():
    item = {"digit": 4, "is_digit": True}
    assert miss({"number": "44", "digits": [item, item]}, "44") is None
    assert miss({"number": "44", "digits": [item, {**item, "is_digit": False}, item]}, "44")  # an extra
    assert miss({"number": "4", "digits": [item, {**item, "is_digit": False}]}, "44") == "a character called no digit"
    assert miss({"number": "4", "digits": [item]}, "44") == "too few characters"
    assert miss({"number": "444", "digits": [item] * 3}, "44") == "too many characters"
    assert miss({"number": "47", "digits": [item, item]}, "44") == "a digit misread"
    assert miss(None, "44") == "refused"
    assert agrees({"digits": [item]}, {"digit": 4, "is_digit": True})
    assert not agrees({"digits": [item, item]}, {"digit": 4, "is_digit": True})
    assert not agrees({"digits": [item]}, {"digit": 4, "is_digit": False})


def test_numbers_eval_reports_every_kind(mnist, capsys, tmp_path):
    code = main(["numbers-eval", "--data", mnist.source, "--count", "4", "--singles", "5", "--save", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for kind in (*KINDS, "single"):
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        share = float(line.split("%")[0].split()[-1])
        assert 0 <= share <= 100
    assert "agree with /v1/predict of 5" in out and "read exactly of 4" in out
    lines = out.splitlines()
    for kind in KINDS:  # each kind's misses, by what went wrong, add up to the numbers it read wrong
        at = next(k for k, line in enumerate(lines) if line.strip().startswith(kind))
        wrong = round(4 * (1 - float(lines[at].split("%")[0].split()[-1]) / 100))
        block = lines[at + 1 : next((k for k in range(at + 1, len(lines)) if not lines[k].startswith("      ")),
                                    len(lines))]
        told = [line.split(":", 1)[1] for line in block if line.strip().startswith("misses:")]
        assert sum(int(part.split()[0]) for part in told[0].split(",")) == wrong if wrong else not told
    assert all(path.suffix in (".png", ".jpg") for path in tmp_path.iterdir())
    perfect = [line for line in lines if line.strip().startswith("perfect cuts")]
    assert len(perfect) == 2  # the canvas kinds, each digit sent alone; a photo's strokes are not traced to digits
    assert all(0 <= float(line.split("%")[0].split()[-1]) <= 100 for line in perfect)
