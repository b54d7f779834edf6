"""What the page sends and shows: a canvas drawing as a one-channel PNG, the model's 28 x 28 view enlarged, and a
number's items boxed over a copy of the image."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import ExifTags, Image, ImageOps

# A canvas with no stroke brighter than this (of 255) is blank: send nothing, show a hint.
BLANK_BELOW = 32
SHOWN_SIDE = 196  # the 28 x 28 image the model saw, 7x: big enough to see each pixel
DIGIT_CANVAS = (280, 280)  # 10x MNIST's 28: room to draw, and an even step down to the 20 px box
NUMBER_CANVAS = (840, 280)  # a line of 4-6 digits, each as tall as on the digit canvas
# The boxed copy: never wider than the number canvas nor taller than half of it again, so a phone's 12-megapixel photo
# reaches the browser as about 100 KB and a portrait one does not push the answer off the screen.
COPY_WIDTH, COPY_HEIGHT = NUMBER_CANVAS[0], 420
DIGIT_BOX, NOT_DIGIT_BOX = "#21c354", "#ff4b4b"  # Streamlit's own green and red
TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def canvas_png(image_data: np.ndarray | None) -> bytes | None:
    """The canvas's RGBA pixels (white ink on black) as a one-channel PNG, or None when nothing is drawn.

    With a background colour the canvas's alpha is 255 everywhere and the ink is in the colour channels; one of them
    holds the whole drawing, and a one-channel PNG decodes about 4x faster on the API than the RGBA one.
    """
    if image_data is None or image_data.ndim != 3 or image_data.size == 0:
        return None
    # Any pen colour on black, not only white; three 2-D maximums: .max(axis=2) over strided channels is ~30x slower.
    ink = np.maximum(np.maximum(image_data[:, :, 0], image_data[:, :, 1]), image_data[:, :, 2])
    if int(ink.max()) < BLANK_BELOW:
        return None
    buffer = io.BytesIO()
    Image.fromarray(ink).save(buffer, format="PNG", compress_level=1)  # speed over a few hundred bytes
    return buffer.getvalue()


def enlarged(png_base64: str, side: int = SHOWN_SIDE) -> Image.Image:
    """The API's base64 PNG of what the model saw, enlarged without smoothing so every pixel shows."""
    image = Image.open(io.BytesIO(base64.b64decode(png_base64)))
    return image.resize((side, side), Image.Resampling.NEAREST)


def boxable_copy(image: bytes) -> tuple[str, tuple[int, int]]:
    """A data: URL of the image upright (as the API turns it, by EXIF) and small enough to show, and the upright size
    in pixels the API's boxes are in."""
    with Image.open(io.BytesIO(image)) as opened:
        width, height = opened.size
        turned = opened.getexif().get(ExifTags.Base.Orientation) in TURNED
        size = (height, width) if turned else (width, height)
        is_jpeg = opened.format == "JPEG"
        # The canvas's own PNG, or a small upright upload: shown as sent, nothing decoded or encoded.
        if opened.format in ("PNG", "JPEG") and not turned and width <= COPY_WIDTH and height <= COPY_HEIGHT:
            return _data_url(image, is_jpeg), size
        # A JPEG decodes straight at 1/2, 1/4 or 1/8 of its size: a photo's copy costs a fraction of a full decode.
        opened.draft(None, (COPY_HEIGHT, COPY_WIDTH) if turned else (COPY_WIDTH, COPY_HEIGHT))
        copy = ImageOps.exif_transpose(opened)
    copy = copy.convert("L" if copy.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    copy.thumbnail((COPY_WIDTH, COPY_HEIGHT), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if is_jpeg:
        copy.save(buffer, format="JPEG", quality=85)
    else:
        copy.save(buffer, format="PNG", compress_level=1)
    return _data_url(buffer.getvalue(), is_jpeg), size


def _data_url(image: bytes, is_jpeg: bool) -> str:
    return f"data:image/{'jpeg' if is_jpeg else 'png'};base64,{base64.b64encode(image).decode()}"


def boxed(data_url: str, size: tuple[int, int], items: list[dict]) -> str:
    """HTML: the copy with each item's box over it (placed in percent of `size`, so it scales with the image), labelled
    with its digit and confidence; an item that is no digit gets a red box and "?"."""
    width, height = size
    shown = min(COPY_WIDTH, COPY_HEIGHT * width / height)  # CSS px: small images are enlarged to this too
    boxes = []
    for item in items:
        x, y, w, h = item["box"]
        colour = DIGIT_BOX if item["is_digit"] else NOT_DIGIT_BOX
        label = f"{item['digit']} · {item['confidence']:.1%}" if item["is_digit"] else "?"
        title = (f"{item['digit']}, {item['confidence']:.1%} sure" if item["is_digit"]
                 else f"not a digit ({1 - item['digit_score']:.0%} sure); if one, most likely a {item['digit']}")
        boxes.append(
            f'<div class="number-box" data-digit="{item["digit"] if item["is_digit"] else "none"}" '
            f'title="{html.escape(title)}" style="position:absolute;box-sizing:border-box;border:2px solid {colour};'
            f"left:{100 * x / width:.3f}%;top:{100 * y / height:.3f}%;"
            f'width:{100 * w / width:.3f}%;height:{100 * h / height:.3f}%">'
            f'<span style="position:absolute;left:-2px;bottom:100%;padding:0 0.3em;white-space:nowrap;color:#fff;'
            f'background:{colour};font-size:0.85rem;font-weight:600;line-height:1.4">{label}</span></div>')
    return (f'<div class="number-boxes" style="position:relative;width:min(100%, {shown:.0f}px);margin-top:1.4rem">'
            f'<img src="{data_url}" alt="the image, each item read boxed" '
            'style="display:block;width:100%">' + "".join(boxes) + "</div>")
