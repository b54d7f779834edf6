"""Image file bytes -> uint8 pixels: upright (EXIF), as few channels as hold the ink, large JPEGs decoded reduced."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from mnist_edge.runtime.errors import ImageDecodeError, PayloadTooLargeError

# The limit guards memory: a few-KB PNG can claim 50000 x 50000 and would need gigabytes once decoded, so the
# header is checked against this before any pixel is. A JPEG decodes at 1/2..1/8 scale inside the decoder,
# so one over the limit is read reduced instead (a 12 MP phone photo at 1/4 is 0.76 MP).
MAX_PIXELS = 4_000_000
# A photo's digit is a fifth of the frame or more; at 800 px on the long side that is 120+ px, plenty for
# 20 px. JPEGs larger than this are decoded at the largest 1/2^k scale that keeps this side (fast and small).
PHOTO_SIDE = 800
JPEG_SCALES = (8, 4, 2)  # what libjpeg's DCT scaling offers below 1 (Pillow's draft)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _jpeg_scale(width: int, height: int, max_pixels: int) -> int:
    """The DCT reduction to decode at: the largest that keeps PHOTO_SIDE, at least what fits max_pixels (0: none does)."""
    fits = next((s for s in (1, *JPEG_SCALES[::-1]) if (width // s) * (height // s) <= max_pixels), 0)
    keeps = next((s for s in JPEG_SCALES if max(width, height) // s >= PHOTO_SIDE), 1)
    return max(fits, keeps) if fits else 0


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and set a reduced JPEG decode; refuse what cannot be read within max_pixels."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own, far higher bomb limit; the warning arrives here as an error under -W error.
        raise PayloadTooLargeError(f"the image claims too many pixels: {exc}", limit=max_pixels) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise a zoo of types on garbage
        raise ImageDecodeError(f"not an image Pillow can read ({type(exc).__name__})") from exc
    width, height = img.size
    scale = _jpeg_scale(width, height, max_pixels) if img.format == "JPEG" else int(width * height <= max_pixels)
    if not scale:
        raise PayloadTooLargeError(
            f"the image is {width} x {height} = {width * height:,} pixels; the limit is {max_pixels:,}",
            width=width, height=height, limit=max_pixels,
        )
    if img.format == "JPEG":
        # Grey straight from the decoder (JPEG's Y plane): no colour conversion, and at 1/2..1/8 scale a 4th to a 64th of the pixels.
        img.draft("L" if img.mode == "RGB" else img.mode, (width // scale, height // scale))
    return img


def _alpha_matters(img: Image.Image) -> bool:
    if "transparency" in img.info:
        return True
    bands = img.getbands()
    alpha = "A" if "A" in bands else "a" if "a" in bands else None
    # An alpha that is opaque everywhere says nothing: the ink is in the colour, read as grey (a quarter the bytes).
    return alpha is not None and img.getchannel(alpha).getextrema()[0] < 255


def _grey(img: Image.Image) -> np.ndarray:
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
    if img.mode == "L":
        return np.asarray(img)  # one channel already: no conversion, no copy beyond Pillow's export
    if img.mode not in ("1", "P", "RGB", "RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV: Pillow has no direct path to L for all of them
    return np.asarray(img.convert("L"))


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes (PNG, JPEG, any Pillow format) -> upright uint8 H x W (grey) or H x W x 4 (RGBA, when alpha matters)."""
    img = _open(data, max_pixels)
    try:
        img.load()
        # Turned as its EXIF Orientation asks (phones store the sensor's pixels and tag the rotation); in place, so an
        # upright image is not copied.
        ImageOps.exif_transpose(img, in_place=True)
        if _alpha_matters(img):
            return np.asarray(img if img.mode == "RGBA" else img.convert("RGBA"))
        return _grey(img)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data, whichever plugin read it
        raise ImageDecodeError(f"the {img.format or 'image'} data is truncated or corrupt ({type(exc).__name__})") from exc
