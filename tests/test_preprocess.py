"""runtime.preprocess: MNIST's own normalization, checked as properties on real MNIST digits drawn onto canvases."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from api_fixtures import FACES, face_strokes, opaque_face
from PIL import Image

from mnist_edge.runtime.errors import BlankImageError, ImageDecodeError, PayloadTooLargeError
from mnist_edge.runtime.preprocess import MAX_PIXELS, decode_image, find_ink, normalize, preprocess, scale_pixels

DIGITS = range(0, 20)  # a few of each class, enough to catch a systematic shift


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.x_test[list(DIGITS)]


def canvas(digit: np.ndarray, *, size: int = 140, at: tuple[int, int] = (70, 70), side: int = 280) -> np.ndarray:
    """The digit enlarged to size x size and placed with its top-left at `at` on a black side x side canvas."""
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC))
    out = np.zeros((side, side), dtype=np.uint8)
    out[at[1] : at[1] + size, at[0] : at[0] + size] = big
    return out


def png(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def close(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two 28 x 28 outputs (0 = identical; two different MNIST digits are ~0.2)."""
    return float(np.abs(a - b).mean())


def com(out: np.ndarray) -> tuple[float, float]:
    img = out[:, :, 0]
    ys, xs = np.mgrid[0:28, 0:28]
    return float((img * ys).sum() / img.sum()), float((img * xs).sum() / img.sum())


def test_output_is_float32_28x28x1_in_unit_range(digits):
    out = normalize(canvas(digits[0]))
    assert out.shape == (28, 28, 1) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.9
    batch = preprocess(canvas(digits[0]))
    assert batch.shape == (1, 28, 28, 1) and batch.dtype == np.float32


def test_mnist_digits_come_out_nearly_unchanged(digits):
    # MNIST already is the normal form: normalizing it again must be (almost) the identity.
    diffs = [close(normalize(d), scale_pixels(d)[0]) for d in digits]
    assert np.mean(diffs) < 0.03, diffs


def test_centre_of_mass_at_14_14_and_longest_side_20(digits):
    for d in digits:
        out = normalize(canvas(d, size=200, at=(10, 60)))
        cy, cx = com(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
        rows, cols = np.flatnonzero(out[:, :, 0].max(1) > 0.05), np.flatnonzero(out[:, :, 0].max(0) > 0.05)
        assert 19 <= max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) <= 21


@pytest.mark.parametrize("at", [(0, 0), (140, 140), (0, 140), (140, 0), (60, 30)])
def test_translation_invariance(digits, at):
    for d in digits[:8]:
        assert close(normalize(canvas(d, at=at)), normalize(canvas(d, at=(70, 70)))) < 0.02


@pytest.mark.parametrize("size", [56, 100, 250])
def test_scale_invariance(digits, size):
    for d in digits[:8]:
        assert close(normalize(canvas(d, size=size, at=(10, 15))), normalize(canvas(d, size=180))) < 0.06  # different digits: ~0.2


def test_stroke_width_robustness(mnist):
    # The same digit thickened and thinned at canvas scale stays nearer its own normal form than any other digit's.
    from PIL import ImageFilter

    digits, labels = mnist.x_test[:8], mnist.y_test[:8]
    refs = [normalize(canvas(d, size=200, at=(40, 40))) for d in digits]
    for i, d in enumerate(digits):
        base = Image.fromarray(canvas(d, size=200, at=(40, 40)))
        for pen in (ImageFilter.MaxFilter(9), ImageFilter.MinFilter(7)):
            out = normalize(np.asarray(base.filter(pen)))
            assert close(out, refs[i]) < 0.1
            assert close(out, refs[i]) < min(close(out, r) for r, y in zip(refs, labels) if y != labels[i])


def test_polarity_and_alpha_invariance(digits):
    for d in digits[:8]:
        ink = canvas(d)
        white_on_black = normalize(ink)
        black_on_white = normalize(255 - ink)
        rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
        rgba[..., :3], rgba[..., 3] = (31, 119, 180), ink  # coloured strokes on a transparent background
        on_transparent = normalize(rgba)
        white_rgba = rgba.copy()
        white_rgba[..., :3] = 255  # white strokes on transparent: only the alpha tells them apart
        rgb_paper = np.stack([255 - ink] * 3, axis=-1)
        for other in (black_on_white, on_transparent, normalize(white_rgba), normalize(rgb_paper)):
            assert close(other, white_on_black) < 1e-3


def test_accepts_every_layout_and_scale(digits):
    ink = canvas(digits[3])
    ref = normalize(ink)
    for variant in (ink[:, :, None], ink.astype(np.float32) / 255, ink.astype(np.float64), ink.astype(np.int64),
                    np.stack([ink] * 3, -1), np.stack([ink] * 3 + [np.full_like(ink, 255)], -1)):
        assert close(normalize(variant), ref) < 1e-3
    tiny = np.zeros((3, 3), np.uint8)
    tiny[1, 1] = 255  # a single dot on a 3 x 3 image is still an image
    assert normalize(tiny).max() > 0.5


def test_the_ink_is_cropped_to_exactly_the_rows_and_columns_it_reaches(digits):
    # A uint8 plane finds its crop from each row's and column's furthest level; a float copy of the same image takes
    # the plain path (every pixel stretched, then scanned): both must give the same crop, at the same place.
    noise = np.random.default_rng(0).integers(0, 12, size=(280, 280)).astype(np.uint8)
    for d in digits[:4]:
        ink = canvas(d, at=(0, 90))  # at the left edge
        rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
        rgba[..., 3] = ink
        for image in (ink, 255 - ink, np.maximum(ink, noise), 255 - np.maximum(ink, noise), rgba):
            table, plain = find_ink(image), find_ink(image.astype(np.float32))
            assert (table.top, table.left, table.shape) == (plain.top, plain.left, plain.shape)
            assert table.shape == (280, 280) and table.crop.shape[1] < 280 - table.left
            assert np.array_equal(table.crop, plain.crop)
            for edge in (table.crop[0], table.crop[-1], table.crop[:, 0], table.crop[:, -1]):
                assert edge.any()


def test_grey_paper_and_faint_noise_do_not_move_the_digit(digits):
    rng = np.random.default_rng(0)
    ink = canvas(digits[5]).astype(np.float32)
    paper = np.clip(200 - ink * 0.7 + rng.normal(0, 4, ink.shape), 0, 255).astype(np.uint8)  # grey, noisy
    assert close(normalize(paper), normalize(ink.astype(np.uint8))) < 0.03


@pytest.mark.parametrize("image", [np.zeros((280, 280), np.uint8), np.full((280, 280, 4), 0, np.uint8),
                                   np.full((64, 64, 3), (10, 200, 30), np.uint8), np.full((28, 28), 0.5, np.float32),
                                   np.zeros((1, 1), np.uint8)], ids=["black", "transparent", "green", "grey", "1x1"])
def test_blank_images_are_refused(image):
    with pytest.raises(BlankImageError):
        normalize(image)


@pytest.mark.parametrize("image", [np.zeros((28, 28, 2), np.uint8), np.zeros((0, 28), np.uint8), np.zeros(28, np.uint8),
                                   np.zeros((2, 28, 28, 1), np.uint8), np.full((28, 28), np.nan, np.float32),
                                   np.zeros((28, 28), np.complex64), np.array([["a"]]), [[0, 255]]],
                         ids=["2-channels", "empty", "1-D", "4-D", "nan", "complex", "strings", "list"])
def test_bad_arrays_are_refused(image):
    with pytest.raises(ImageDecodeError):
        normalize(image)


def test_deterministic(digits):
    image = canvas(digits[7], size=123, at=(31, 77))
    assert np.array_equal(normalize(image), normalize(image.copy()))
    assert np.array_equal(preprocess(png(Image.fromarray(image))), preprocess(png(Image.fromarray(image))))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I", "I;16", "F", "CMYK", "YCbCr", "LAB", "HSV"])
def test_every_pillow_mode_decodes_to_the_same_digit(digits, mode):
    ink = canvas(digits[2])
    ref = normalize(ink)
    img = Image.fromarray(ink).convert("RGB").convert(mode) if mode not in ("I;16", "I", "F") else None
    if mode == "I;16":
        img = Image.fromarray(ink.astype(np.uint16) * 257)
    elif mode in ("I", "F"):
        img = Image.fromarray(ink).convert(mode)
    fmt = {"CMYK": "TIFF", "YCbCr": "TIFF", "LAB": "TIFF", "HSV": "TIFF", "F": "TIFF", "I": "TIFF", "PA": "TIFF"}.get(mode, "PNG")
    data = png(img, format=fmt) if mode not in ("HSV", "PA") else None
    decoded = decode_image(data) if data else None
    if decoded is None:  # no file format stores HSV/PA: decode the array the way decode_image would
        decoded = np.asarray(img.convert("RGBA" if "A" in mode else "L"))
    assert decoded.dtype == np.uint8 and decoded.ndim in (2, 3)
    limit = 0.2 if mode == "1" else 0.02  # 1-bit loses the anti-aliasing
    assert close(normalize(decoded), ref) < limit


def test_alpha_and_palette_transparency_decode_as_rgba(digits):
    ink = canvas(digits[4])
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    assert decode_image(png(Image.fromarray(rgba))).shape == (280, 280, 4)
    palette = Image.fromarray(255 - ink).convert("P")
    palette.info["transparency"] = 255
    assert decode_image(png(palette, transparency=255)).shape == (280, 280, 4)
    assert decode_image(png(Image.fromarray(ink))).shape == (280, 280)


def test_jpeg_decodes(digits):
    ink = canvas(digits[6])
    data = png(Image.fromarray(255 - ink), format="JPEG", quality=70)
    assert close(normalize(decode_image(data)), normalize(ink)) < 0.03


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30], ids=["empty", "text", "bad-png"])
def test_garbage_bytes_are_refused(data):
    with pytest.raises(ImageDecodeError):
        decode_image(data)


def test_truncated_png_is_refused(digits):
    data = png(Image.fromarray(canvas(digits[0])))
    with pytest.raises(ImageDecodeError):
        decode_image(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: what a decompression bomb looks like up front."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_huge_dimensions_are_refused_before_decoding():
    small = png(Image.new("L", (3000, 3000)))  # a real 9 MP image in a few KB
    assert len(small) < 100_000
    with pytest.raises(PayloadTooLargeError) as info:
        decode_image(small, max_pixels=1_000_000)
    assert info.value.status == 413 and info.value.details["width"] == 3000
    with pytest.raises(PayloadTooLargeError):
        preprocess(_png_header_only(50_000, 50_000))  # over the default limit; the body could never fill it
    with pytest.raises(PayloadTooLargeError):
        decode_image(_png_header_only(200_000, 200_000), max_pixels=10**12)  # Pillow's own bomb guard, mapped
    assert 2000 * 2000 <= MAX_PIXELS  # a big photo of a digit still gets through


def test_preprocess_bytes_and_array_agree(digits):
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = canvas(digits[1])
    assert np.array_equal(preprocess(png(Image.fromarray(rgba))), preprocess(rgba))


def test_scale_pixels_keeps_mnist_as_is(digits):
    out = scale_pixels(digits[:3])
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.float32
    assert np.allclose(out[..., 0] * 255, digits[:3])


def _jpeg(image: Image.Image, *, orientation: int = 1, quality: int = 90) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    return png(image, format="JPEG", quality=quality, exif=exif.tobytes())


@pytest.mark.parametrize(("orientation", "stored"), [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90),
                                                     (8, Image.Transpose.ROTATE_270), (2, Image.Transpose.FLIP_LEFT_RIGHT)])
def test_exif_orientation_is_applied(digits, orientation, stored):
    upright = Image.fromarray(255 - canvas(digits[1], size=180, at=(20, 60), side=280)[:, :200])  # not square
    data = _jpeg(upright.transpose(stored), orientation=orientation)  # a phone stores the sensor's pixels and tags the turn
    decoded = decode_image(data)
    assert decoded.shape == (280, 200)
    reference = normalize(decode_image(_jpeg(upright)))
    assert close(normalize(decoded), reference) < 0.02
    assert close(normalize(decode_image(_jpeg(upright.transpose(stored)))), reference) > 0.05  # the tag is what fixed it


def test_a_12mp_jpeg_is_decoded_reduced_within_the_limit():
    photo = Image.new("L", (4032, 3024), 235)
    photo.paste(30, (1800, 1200, 2100, 1900))  # a bar: any ink will do
    data = _jpeg(photo, quality=70)
    decoded = decode_image(data)  # 12.2 MP against the default 4 MP limit
    assert decoded.dtype == np.uint8 and decoded.ndim == 2
    assert decoded.shape == (756, 1008)  # 1/4 scale: the largest that keeps 800 px on the long side
    assert decoded.size <= MAX_PIXELS and decoded[1200 // 4 + 10, 1900 // 4 + 10] < 80
    with pytest.raises(PayloadTooLargeError):
        decode_image(data, max_pixels=100_000)  # even 1/8 (504 x 378) is over this
    with pytest.raises(PayloadTooLargeError):
        decode_image(png(photo))  # a PNG cannot be decoded reduced: refused as before


def test_small_jpegs_and_canvases_are_not_reduced(digits):
    ink = canvas(digits[2])
    assert decode_image(_jpeg(Image.fromarray(255 - ink))).shape == (280, 280)
    assert decode_image(_jpeg(Image.new("RGB", (1500, 1000), "white"))).shape == (1000, 1500)  # < 2 x 800: full size


def test_opaque_rgba_decodes_to_one_grey_channel(digits):
    ink = canvas(digits[3])
    opaque = np.stack([255 - ink] * 3 + [np.full_like(ink, 255)], axis=-1)
    decoded = decode_image(png(Image.fromarray(opaque)))
    assert decoded.shape == (280, 280) and decoded.dtype == np.uint8  # the alpha says nothing: not carried along
    assert close(normalize(decoded), normalize(ink)) < 1e-3


def test_canvases_and_scans_take_the_canvas_path(mnist, monkeypatch):
    from mnist_edge.runtime import preprocess as module
    from mnist_edge.train.drawn import draw

    calls = []
    monkeypatch.setattr(module, "photo_ink", lambda *a, **k: calls.append(a))
    rng = np.random.default_rng(2)
    for digit in mnist.x_test[:12]:
        normalize(draw(digit, rng)[0])  # every canvas style: transparent, black on white, white on black
        normalize(decode_image(png(Image.fromarray(255 - canvas(digit)), format="JPEG", quality=75)))  # a scan
    assert calls == []


def test_drawn_canvases_still_read_right(mnist, shipped_models):
    from mnist_edge.runtime.registry import ModelRegistry
    from mnist_edge.train.drawn import drawn_set, to_png

    predict = ModelRegistry.from_manifest(shipped_models, names=["tflite-int8"]).get("tflite-int8").backend.predict
    samples = drawn_set(mnist.x_test, mnist.y_test, 40, seed=0)
    batch = np.concatenate([preprocess(to_png(image)) for image, _, _ in samples])
    right = predict(batch).argmax(1) == [label for _, label, _ in samples]
    assert right.mean() >= 0.9  # 98.9 % on 3,000, the same before and after the photo path was added


@pytest.mark.parametrize("name", FACES)
def test_a_drawing_mostly_ink_reads_as_drawn(name):
    # The same strokes framed by a blank margin: a plain canvas that no lighting step touches, and the crop to the
    # ink drops the margin again.
    mask = np.asarray(face_strokes(*FACES[name]))
    assert np.count_nonzero(mask) > 0.4 * mask.size
    expected = normalize(np.pad(mask, 40))
    assert close(preprocess(opaque_face(name))[0], expected) < 0.01
