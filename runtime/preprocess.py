"""The one shared preprocessing step: anything a user draws or uploads -> float32 N x 28 x 28 x 1 in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mnist_edge.runtime.decode import MAX_PIXELS, decode_image
from mnist_edge.runtime.errors import BlankImageError, ImageDecodeError
from mnist_edge.runtime.morphology import rank_filter
from mnist_edge.runtime.photo import is_photo, photo_ink

__all__ = ["MAX_PIXELS", "decode_image", "Ink", "find_ink", "fit_crop", "normalize", "preprocess", "scale_pixels"]

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
# A photo's page is lit paper unless most of it is darker than this (a chalkboard): a vignette darkens only the border.
DARK_PAGE = 0.3
# A drawing is page and ink, with anti-aliased stroke edges between; paper under light and grain never is.
TWO_LEVEL_TOLERANCE = 0.05
TWO_LEVEL_SHARE = 0.9


def _checked(image: np.ndarray) -> np.ndarray:
    """Any accepted array as H x W x C (C = 1, 3 or 4), or ImageDecodeError."""
    if not isinstance(image, np.ndarray) or image.dtype.kind not in "biuf":
        raise ImageDecodeError(f"expected a numeric array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageDecodeError(f"expected H x W, H x W x 1, 3 or 4 pixels, got shape {image.shape}", shape=list(image.shape))
    return image


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """A non-uint8 array -> float32 in [0, 1]; its scale (0-1 or 0-255) is read from all its values."""
    values = image.astype(np.float32)
    if not np.isfinite(values).all():
        raise ImageDecodeError("the pixels contain NaN or infinity")
    if values.max() > 1:  # the 0-255 scale, e.g. JSON integers or a float copy of uint8 pixels
        values *= np.float32(1 / 255)
    return np.clip(values, 0, 1, out=values)


def _unit(plane: np.ndarray) -> np.ndarray:
    return plane.astype(np.float32) * np.float32(1 / 255) if plane.dtype == np.uint8 else plane


def _border(channel: np.ndarray) -> np.ndarray:
    return np.concatenate([channel[0], channel[-1], channel[1:-1, 0], channel[1:-1, -1]])


def _plane(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """The one H x W channel that holds the ink (uint8 as given, else float32 in [0, 1]) and whether it is alpha."""
    pixels = _checked(image)
    if pixels.dtype != np.uint8:
        pixels = _as_unit_float(pixels)
    half = 127.5 if pixels.dtype == np.uint8 else 0.5
    if pixels.shape[2] == 4 and np.median(_border(pixels[:, :, 3])) < half:
        return pixels[:, :, 3], True  # strokes on a transparent background: the alpha is the ink, the colour a choice
    if pixels.shape[2] == 1:
        return pixels[:, :, 0], False
    # Only the three colour channels become float, and straight into one grey plane.
    return pixels[:, :, :3] @ (LUMA * np.float32(1 / 255) if pixels.dtype == np.uint8 else LUMA), False


def _two_level(sample: np.ndarray) -> bool:
    """Whether nearly all pixels (in [0, 1]) are at the darkest or the lightest level: a drawing, never lit paper."""
    low, high = float(sample.min()), float(sample.max())
    at_either = (sample - low < TWO_LEVEL_TOLERANCE) | (high - sample < TWO_LEVEL_TOLERANCE)
    return high - low >= MIN_CONTRAST and float(at_either.mean()) >= TWO_LEVEL_SHARE


@dataclass(frozen=True)
class Ink:
    """An image's ink cropped to its strokes: float32 in [0, 1] (1 = the darkest or brightest stroke), with ink in its
    first and last rows and columns; where the crop begins in the whole ink, and that whole's shape (the image's, or a
    large photo's reduced)."""

    crop: np.ndarray
    top: int
    left: int
    shape: tuple[int, int]


def find_ink(image: np.ndarray, *, line: bool = False) -> Ink:
    """The ink of an image (H x W [x 1|3|4], uint8 or float), whatever the polarity, alpha or lighting, cropped.

    A photo keeps only its digit's strokes, or with `line` every stroke written on it (a number), and a photo's ink is
    box-reduced when its long side is 1,600 px or more (runtime/photo.py); anything else keeps the image's shape.
    """
    plane, is_alpha = _plane(image)
    if is_alpha:
        return _stretched(plane, lambda grey: grey)
    border = np.sort(_unit(_border(plane)))
    step = max(1, min(plane.shape) // 32)
    sample = _unit(plane[::step, ::step])
    if is_photo(border, sample):  # unevenly lit paper: light and grain must go first
        grey = plane if plane.dtype == np.uint8 else (plane * 255 + 0.5).astype(np.uint8)
        try:
            return _cropped(photo_ink(grey, dark_ink=float(np.median(sample)) >= DARK_PAGE, line=line))
        except BlankImageError:
            # A drawing whose ink covers half the frame (a big face in thick strokes) looks like lit paper to
            # is_photo and like a dark page to photo_ink. When every pixel is page or ink, it is read as drawn:
            # neither its border nor its majority tells the page, so it is taken to be light, as paper and the
            # canvas are.
            if not _two_level(sample):
                raise
        background, dark_ink = float(sample.max()), True
    else:
        background = float(border[len(border) // 2])  # the median, near enough
        # Paper is light and a pen dark, a canvas or a chalkboard the other way round: the border tells which.
        dark_ink = background >= 0.5
    return _stretched(plane, (lambda grey: background - grey) if dark_ink else (lambda grey: grey - background))


def _stretched(plane: np.ndarray, ink_of: Callable[[np.ndarray], np.ndarray]) -> Ink:
    """The plane's ink (`ink_of` its values in [0, 1]) stretched to full strength (MNIST's strokes are ~1.0), the faint
    background noise dropped. A uint8 plane is done as a table of its 256 levels, looked up once (a third the cost),
    and only over the rows and columns that hold ink."""
    if plane.dtype != np.uint8:
        ink = ink_of(plane)
        return _cropped(_stretch(ink, float(ink.max())))
    plane = np.ascontiguousarray(plane)  # an RGBA's alpha is every 4th byte: min, max and the look-up run faster
    ink = ink_of(_unit(np.arange(256, dtype=np.uint8)))
    # The ink is monotonic in the level: its peak is at the plane's darkest or lightest level, and a row or column
    # holds ink exactly when its level furthest towards the ink does.
    table = _stretch(ink, float(ink[[plane.min(), plane.max()]].max()))
    furthest = np.max if table[255] >= table[0] else np.min
    rows = np.flatnonzero(table[furthest(plane, axis=1)])
    cols = np.flatnonzero(table[furthest(plane, axis=0)])
    top, left = int(rows[0]), int(cols[0])
    # A uint8 level is always a valid index: "wrap" skips the bounds check (a quarter of the look-up's time).
    crop = np.take(table, plane[top : rows[-1] + 1, left : cols[-1] + 1], mode="wrap")
    return Ink(crop, top, left, plane.shape)


def _stretch(ink: np.ndarray, peak: float) -> np.ndarray:
    if peak < MIN_CONTRAST:
        raise BlankImageError("the image has no ink on it (blank or a single colour)", contrast=round(peak, 3))
    return np.clip((ink - NOISE_FLOOR * peak) * (1 / ((1 - NOISE_FLOOR) * peak)), 0, 1)


def _cropped(ink: np.ndarray) -> Ink:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        raise BlankImageError("the image has no ink on it (blank or a single colour)")
    return Ink(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], int(rows[0]), int(cols[0]), ink.shape)


def pen_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / edge length of the strokes."""
    mask = ink > 0.5
    # Every change between neighbours, and every stroke pixel on the frame (an edge against the page around it).
    edges = (np.count_nonzero(mask[:, 1:] != mask[:, :-1]) + np.count_nonzero(mask[1:] != mask[:-1])
             + np.count_nonzero(mask[[0, -1]]) + np.count_nonzero(mask[:, [0, -1]]))
    return 2 * np.count_nonzero(mask) / max(edges, 1)


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width over the longest side (MNIST: 0.06-0.14)."""
    return pen_width(ink) / max(ink.shape)


def _widen_thin(crop: np.ndarray) -> np.ndarray:
    """A thin pen's strokes widened into MNIST's range; at 20 px they would fade to a faint trace."""
    width = _stroke_width(crop)
    if width >= THIN:
        return crop  # thick brushes are left alone: narrowing them did not help the model (drawn-set check)
    scale = MORPH_SIDE / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    grow = int(round((WIDENED - width) * MORPH_SIDE))
    mid = np.asarray(Image.fromarray(crop).resize(size, RESAMPLE), dtype=np.float32)
    # Grey dilation by a (grow + 1)-square on a page widened by grow: every stroke grow px wider, none cut off.
    return _cropped(rank_filter(mid, grow + 1, np.maximum, pad=(grow, 2 * grow), mode="constant")).crop


def normalize(image: np.ndarray) -> np.ndarray:
    """One image (H x W [x 1|3|4], uint8 or float) -> float32 28 x 28 x 1, MNIST-normalized: white ink on black."""
    return fit_crop(find_ink(image).crop)


def fit_crop(crop: np.ndarray) -> np.ndarray:
    """Ink cropped to its strokes (float32 in [0, 1], ink in its first and last rows and columns) -> float32
    28 x 28 x 1 as MNIST: fitted into a 20 x 20 box and centred."""
    crop = _widen_thin(crop)
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
