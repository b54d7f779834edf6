"""train.photos and runtime.photo: synthetic phone photos are reproducible, varied, and read right by preprocess + the shipped model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.errors import BlankImageError
from mnist_edge.runtime.photo import photo_ink
from mnist_edge.runtime.preprocess import normalize, preprocess
from mnist_edge.train.synthetic_photos import HELD_OUT, SIZES, iter_photos, pick_style, render

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def predict(shipped_models):
    from mnist_edge.runtime.registry import ModelRegistry

    registry = ModelRegistry.from_manifest(shipped_models, names=["tflite-int8"])
    return registry.get("tflite-int8").backend.predict


def read_right(photos, predict) -> float:
    batch = np.concatenate([preprocess(p.jpeg) for p in photos])  # the default pixel limit, as the API has it
    return float((predict(batch).argmax(1) == [p.label for p in photos]).mean())


def test_same_seed_same_photo_and_a_new_seed_another(mnist):
    a = next(iter_photos(mnist.x_test, mnist.y_test, 1, seed=5))
    b = next(iter_photos(mnist.x_test, mnist.y_test, 1, seed=5))
    c = next(iter_photos(mnist.x_test, mnist.y_test, 1, seed=6))
    assert a.jpeg == b.jpeg and a.conditions == b.conditions and a.label == int(mnist.y_test[0])
    assert a.jpeg != c.jpeg


def test_tuning_never_sees_the_held_out_styles(mnist):
    rng = np.random.default_rng(0)
    tune, held = [pick_style(rng) for _ in range(200)], [pick_style(rng, "held-out") for _ in range(200)]
    for key, names in HELD_OUT.items():
        assert not {c[key] for c in tune} & set(names)
        assert {c[key] for c in held} & set(names)
    assert len({c["pen"] for c in tune}) >= 3 and len({c["light"] for c in tune}) >= 3
    assert {c["ruled"] for c in tune} == {True, False} and {c["orientation"] for c in held} == {1, 3, 6, 8}
    assert 0.15 < np.mean([c["orientation"] != 1 for c in held]) < 0.35
    with pytest.raises(ValueError):
        next(iter_photos(mnist.x_test, mnist.y_test, 1, seed=0, split="test"))


def test_rotated_photos_store_landscape_pixels_and_tag_the_turn(mnist):
    rng = np.random.default_rng(0)
    turned = 0
    for digit in mnist.x_test[:8]:
        jpeg, cond = render(digit, rng)
        img = Image.open(io.BytesIO(jpeg))
        assert img.format == "JPEG" and img.size == SIZES["2mp"]  # the sensor's shape, whatever the tag
        assert img.getexif().get(0x0112, 1) == cond["orientation"]
        upright = decode_image(jpeg, max_pixels=10**8)
        assert (upright.shape[0] > upright.shape[1]) == (cond["orientation"] in (6, 8))
        turned += cond["orientation"] != 1
    assert turned >= 1


def test_photos_read_right_at_2mp(mnist, predict):
    photos = list(iter_photos(mnist.x_test, mnist.y_test, 8, seed=11, split="held-out"))
    assert read_right(photos, predict) >= 0.7  # measured: 98 % on 300 held-out photos


def test_photos_read_right_at_12mp_under_the_default_pixel_limit(mnist, predict):
    photos = list(iter_photos(mnist.x_test, mnist.y_test, 3, seed=12, size="12mp", split="held-out"))
    assert read_right(photos, predict) >= 0.66  # measured: 98 % on 150 held-out photos


def test_photo_ink_keeps_the_digit_and_drops_light_and_grain(mnist):
    photo = next(iter_photos(mnist.x_test, mnist.y_test, 1, seed=3, split="held-out"))
    grey = decode_image(photo.jpeg)
    ink = photo_ink(grey, dark_ink=True)
    assert ink.shape == grey.shape and ink.dtype == np.float32 and ink.max() == 1
    inked = np.count_nonzero(ink)
    assert 0 < inked < grey.size * 0.05  # strokes only: no lit patch or grain survives
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows[-1] - rows[0] < grey.shape[0] * 0.6  # one digit's height, not the frame's


def test_blank_paper_photo_is_refused():
    ys, xs = np.mgrid[0:600, 0:800]
    lit = (230 - 0.08 * xs - 0.05 * ys + np.random.default_rng(0).normal(0, 3, ys.shape)).clip(0, 255).astype(np.uint8)
    with pytest.raises(BlankImageError):
        normalize(lit)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*_[0-9].[jp][pn]g")), ids=lambda p: p.name)
def test_examples_read_right(path, predict):
    label = int(path.stem.split("_")[1])
    assert int(predict(preprocess(path.read_bytes())).argmax()) == label


def test_photo_eval_script_reports_its_share_read_right(mnist, shipped_models):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "photo_eval.py"), "--data", str(mnist.source),
                          "--models-dir", str(shipped_models), "--size", "2mp", "--count", "4"],
                         capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if "held-out photos at 2mp" in line)
    assert line.endswith("of 4 read right") and 0 <= float(line.split(": ")[1].split("%")[0]) <= 100
