"""The one shared preprocessing step: anything a user draws or uploads -> float32 N x 28 x 28 x 1 in [0, 1]."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mnist_edge.runtime.errors import BlankImageError, ImageDecodeError, PayloadTooLargeError

# A 2000 x 2000 photo of a digit is already generous; a few-KB PNG can claim 50000 x 50000 and
# would need gigabytes once decoded, so the header is checked against this before any pixel is.
MAX_PIXELS = 4_000_000

BOX = 20  # MNIST fitted each digit into a 20 x 20 box, preserving its aspect ratio ...
SIDE = 28  # ... and centred that box's centre of mass in a 28 x 28 field,
CENTRE = 14.0  # at pixel index (14, 14): measured on MNIST's test set (mean 13.99, 14.00).
MIN_CONTRAST = 0.1  # ink fainter than this against the background is noise (JPEG, scanner), not a digit
NOISE_FLOOR = 0.15  # of the peak ink: lifts JPEG ringing and paper texture out of the bounding box
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, what Pillow's convert("L") uses
# Anti-aliased when reducing (its kernel widens with the scale), smooth when a tiny drawing is enlarged.
RESAMPLE = Image.Resampling.BILINEAR
THIN = 0.065  # stroke width / longest side under MNIST's 5th percentile (its median is 0.092) ...
WIDENED = 0.085  # ... is widened to this (a drawn-set check: thin-pen accuracy +2.4 points, the rest unchanged)
MORPH_SIDE = 80  # widen at 80 px, where one pixel is a fine step (1/80 of the digit)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _has_alpha(img: Image.Image) -> bool:
    return "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info


def _to_gray(img: Image.Image) -> np.ndarray:
    # Pillow's own I;16/I/F -> L conversion clips at 255 instead of rescaling, so those are scaled here.
    if img.mode in SIXTEEN_BIT or img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        if values.max(initial=0) > 255:
            values = values / 257.0
        return np.clip(values, 0, 255).round().astype(np.uint8)
    if img.mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if values.max(initial=0) <= 1:
            values = values * 255.0
        return np.clip(values, 0, 255).round().astype(np.uint8)
    if img.mode not in ("1", "L", "P", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV: Pillow has no direct path to L for all of them
    return np.asarray(img.convert("L"))


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes (PNG, JPEG, any Pillow format) -> uint8 H x W (grey) or H x W x 4 (RGBA, when it has alpha)."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own, far higher bomb limit; the warning arrives here as an error under -W error.
        raise PayloadTooLargeError(f"the image claims too many pixels: {exc}", limit=max_pixels) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise a zoo of types on garbage
        raise ImageDecodeError(f"not an image Pillow can read ({type(exc).__name__})") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"the image is {width} x {height} = {width * height:,} pixels; the limit is {max_pixels:,}",
            width=width, height=height, limit=max_pixels,
        )
    try:
        img.load()
        if _has_alpha(img):
            return np.asarray(img.convert("RGBA"))
        return _to_gray(img)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data, whichever plugin read it
        raise ImageDecodeError(f"the {img.format or 'image'} data is truncated or corrupt ({type(exc).__name__})") from exc


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """Any accepted array -> float32 H x W x C in [0, 1], or ImageDecodeError."""
    if not isinstance(image, np.ndarray) or image.dtype.kind not in "biuf":
        raise ImageDecodeError(f"expected a numeric array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageDecodeError(f"expected H x W, H x W x 1, 3 or 4 pixels, got shape {image.shape}", shape=list(image.shape))
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    values = image.astype(np.float32)
    if not np.isfinite(values).all():
        raise ImageDecodeError("the pixels contain NaN or infinity")
    if values.max() > 1:  # the 0-255 scale, e.g. JSON integers or a float copy of uint8 pixels
        values *= np.float32(1 / 255)
    return np.clip(values, 0, 1, out=values)


def _border(channel: np.ndarray) -> np.ndarray:
    return np.concatenate([channel[0], channel[-1], channel[1:-1, 0], channel[1:-1, -1]])


def _ink(pixels: np.ndarray) -> np.ndarray:
    """H x W ink in [0, 1] (1 = the darkest or brightest stroke), whatever the polarity or alpha."""
    if pixels.shape[2] == 4 and np.median(_border(pixels[:, :, 3])) < 0.5:
        ink = pixels[:, :, 3]  # strokes on a transparent background: the alpha is the ink, the colour is a choice
    else:
        gray = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels[:, :, :3] @ LUMA
        background = float(np.median(_border(gray)))
        # Paper is light and a pen dark, a canvas or a chalkboard the other way round: the border tells which.
        ink = background - gray if background >= 0.5 else gray - background
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise BlankImageError("the image has no ink on it (blank or a single colour)", contrast=round(peak, 3))
    # Stretch the strokes to full strength (MNIST's are ~1.0) and drop the faint background noise.
    return np.clip((ink - NOISE_FLOOR * peak) * (1 / ((1 - NOISE_FLOOR) * peak)), 0, 1)


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width over the longest side: 2 x area / edge length of the strokes (MNIST: 0.06-0.14)."""
    mask = np.pad(ink > 0.5, 1)
    edges = np.count_nonzero(mask[:, 1:] != mask[:, :-1]) + np.count_nonzero(mask[1:] != mask[:-1])
    return 2 * np.count_nonzero(mask) / max(edges, 1) / max(ink.shape)


def _dilate(ink: np.ndarray, grow: int) -> np.ndarray:
    """Grey dilation by a (grow + 1)-square: every stroke `grow` px wider, as separable shifted maxima."""
    out = np.pad(ink, grow)
    for axis in (0, 1):
        view = np.moveaxis(out, axis, 0)
        acc = view.copy()
        for shift in range(1, grow + 1):
            np.maximum(acc[:-shift], view[shift:], out=acc[:-shift])
        out = np.moveaxis(acc, 0, axis)
    return out


def _crop(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _widen_thin(crop: np.ndarray) -> np.ndarray:
    """A thin pen's strokes widened into MNIST's range; at 20 px they would fade to a faint trace."""
    width = _stroke_width(crop)
    if width >= THIN:
        return crop  # thick brushes are left alone: narrowing them did not help the model (drawn-set check)
    scale = MORPH_SIDE / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    grow = int(round((WIDENED - width) * MORPH_SIDE))
    mid = np.asarray(Image.fromarray(crop).resize(size, RESAMPLE), dtype=np.float32)
    return _crop(_dilate(mid, grow))


def normalize(image: np.ndarray) -> np.ndarray:
    """One image (H x W [x 1|3|4], uint8 or float) -> float32 28 x 28 x 1, MNIST-normalized: white ink on black."""
    ink = _ink(_as_unit_float(image))
    crop = _widen_thin(_crop(ink))
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(size, RESAMPLE), dtype=np.float32)
    # Shift the centre of mass to (14, 14), by whole pixels as MNIST did.
    mass = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(digit.shape[0], dtype=np.float32)) / mass
    cx = (digit.sum(axis=0) @ np.arange(digit.shape[1], dtype=np.float32)) / mass
    y0, x0 = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    # A lopsided digit (a 7's heavy top) can be pushed past the frame: paste only what lands inside.
    sy, sx = max(0, -y0), max(0, -x0)
    ey, ex = min(digit.shape[0], SIDE - y0), min(digit.shape[1], SIDE - x0)
    out[y0 + sy : y0 + ey, x0 + sx : x0 + ex] = digit[sy:ey, sx:ex]
    return np.clip(out, 0, 1, out=out)[:, :, None]


def preprocess(image: bytes | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes or a pixel array -> float32 1 x 28 x 28 x 1, ready for any backend's predict."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = decode_image(bytes(image), max_pixels=max_pixels)
    return normalize(image)[None]


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """MNIST-format uint8 (or 0-255) digits, N x 28 x 28, -> float32 N x 28 x 28 x 1 in [0, 1], no resizing."""
    pixels = np.asarray(pixels)
    return (pixels.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
