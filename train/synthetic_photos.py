"""Synthetic phone photos of digits written on paper: MNIST digits retraced with a pen, lit, tilted, JPEG-encoded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnist_edge.train.drawn import UP, skeleton

SIZES = {"2mp": (1600, 1200), "12mp": (4032, 3024)}  # what phones store: landscape sensor pixels
# Pen: (stroke width as a fraction of the digit's height, ink strength range). A pencil is faint and grainy.
PENS = {"ballpoint": ((0.035, 0.06), (0.75, 0.95)), "felt-tip": ((0.08, 0.14), (0.85, 1.0)),
        "pencil": ((0.04, 0.07), (0.45, 0.7)), "gel": ((0.05, 0.08), (0.8, 1.0))}
INKS = {"blue": (35, 45, 130), "black": (28, 28, 34)}
PAPERS = {"white": (246, 246, 242), "cream": (242, 232, 204), "grey": (204, 204, 198), "recycled": (225, 218, 205)}
LIGHTS = ("gradient", "vignette", "shadow-band", "dim-corner")
# Measurement only: tuning never sees these pens, papers, lights, nor MNIST's test digits.
HELD_OUT = {"pen": ("pencil",), "paper": ("cream",), "light": ("shadow-band",)}
ORIENTATIONS = (1, 3, 6, 8)  # EXIF Orientation: upright, upside down, and the two ways a phone is held upright
# The stored pixels are the displayed image turned back by the inverse of what the tag asks a viewer to do.
STORE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class Photo:
    """One synthetic photo: the JPEG bytes, the digit it shows and how it was made."""

    jpeg: bytes
    label: int
    conditions: dict


def _choice(rng: np.random.Generator, options, held_out: tuple[str, ...], split: str) -> str:
    pool = [o for o in options if split == "held-out" or o not in held_out]
    return str(pool[rng.integers(len(pool))])


def pen_layer(digit: np.ndarray, height: int, width_frac: float) -> Image.Image:
    """The digit retraced by a round pen, as an L alpha layer about `height` px tall (with a margin)."""
    ys, xs, blob = skeleton(digit)
    scale = height / (28 * UP)
    pen = max(2.0, width_frac * height)
    pad = int(pen) + 4
    side = int(28 * UP * scale) + 2 * pad
    layer = Image.new("L", (side, side), 0)
    pencil = ImageDraw.Draw(layer)
    px, py = xs * scale + pad, ys * scale + pad
    index = -np.ones((28 * UP + 2, 28 * UP + 2), dtype=np.int64)
    index[ys + 1, xs + 1] = np.arange(len(ys))
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each 8-neighbour pair once: the pen's path
        for a, b in zip(index[ys + 1, xs + 1], index[ys + 1 + dy, xs + 1 + dx]):
            if b >= 0:
                pencil.line([(px[a], py[a]), (px[b], py[b])], fill=255, width=max(1, round(pen)))
    r = pen / 2
    for x, y in zip(px, py):
        pencil.ellipse([x - r, y - r, x + r, y + r], fill=255)
    if np.asarray(blob).any():
        inner = int(28 * UP * scale)
        layer.paste(255, (pad, pad, pad + inner, pad + inner), blob.resize((inner, inner), Image.Resampling.BILINEAR))
    return layer


def _perspective(layer: Image.Image, rng: np.random.Generator, *, tilt: float, skew: float) -> Image.Image:
    """The layer rotated by `tilt` degrees and seen slightly off-axis (each corner moved by up to `skew` of the side)."""
    layer = layer.rotate(tilt, resample=Image.Resampling.BILINEAR, expand=True)
    w, h = layer.size
    corners = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    moved = corners + rng.uniform(-skew, skew, (4, 2)) * (w, h)
    # Solve for the 8 coefficients that map output (moved) corners back to input corners, as PIL expects.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(moved, corners):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows), np.array(rhs))
    return layer.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR)


def _light(rng: np.random.Generator, kind: str, w: int, h: int) -> np.ndarray:
    """Illumination as float32 H x W (1 = full light), made at 1/16 scale and smoothly enlarged."""
    sw, sh = max(2, w // 16), max(2, h // 16)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    ys, xs = ys / sh - 0.5, xs / sw - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    light = 1 - rng.uniform(0.15, 0.4) * (along + 0.5)  # a window on one side
    if kind == "vignette":
        light *= 1 - rng.uniform(0.3, 0.55) * (xs**2 + ys**2) * 2
    elif kind == "shadow-band":  # a hand or the phone between the lamp and the paper: soft-edged
        across = -xs * np.sin(angle) + ys * np.cos(angle)
        centre, half, soft = rng.uniform(-0.3, 0.3), rng.uniform(0.05, 0.2), rng.uniform(0.02, 0.08)
        band = np.clip((half - np.abs(across - centre)) / soft + 0.5, 0, 1)
        light *= 1 - rng.uniform(0.3, 0.5) * band
    elif kind == "dim-corner":
        cy, cx = rng.choice([-0.5, 0.5], 2)
        light *= 1 - rng.uniform(0.3, 0.5) * np.clip(1 - np.hypot(ys - cy, xs - cx) / 0.8, 0, 1)
    small = Image.fromarray(light.astype(np.float32), mode="F")
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))


def _grain(rng: np.random.Generator, w: int, h: int, amount: float) -> np.ndarray:
    """Paper fibre texture: noise made at half scale and enlarged, so it is a little coarser than a pixel."""
    noise = rng.standard_normal((h // 2, w // 2), dtype=np.float32) * np.float32(amount)
    return np.asarray(Image.fromarray(noise, mode="F").resize((w, h), Image.Resampling.BILINEAR))


def pick_style(rng: np.random.Generator, split: str = "tune") -> dict:
    """Pen, ink, paper, light, rules and EXIF orientation of one photo; the tuning split never picks a HELD_OUT one."""
    return {"pen": _choice(rng, PENS, HELD_OUT["pen"], split), "ink": _choice(rng, INKS, (), split),
            "paper": _choice(rng, PAPERS, HELD_OUT["paper"], split), "light": _choice(rng, LIGHTS, HELD_OUT["light"], split),
            "ruled": bool(rng.random() < 0.4),
            "orientation": int(rng.choice(ORIENTATIONS[1:])) if rng.random() < 0.25 else 1}  # a quarter are rotated


def frame(style: dict, size: str) -> tuple[int, int]:
    """The photo's width and height as displayed (a phone held upright shows its landscape sensor turned)."""
    stored_w, stored_h = SIZES[size]
    return (stored_h, stored_w) if style["orientation"] in (6, 8) else (stored_w, stored_h)


def render(digit: np.ndarray, rng: np.random.Generator, *, size: str = "2mp", split: str = "tune") -> tuple[bytes, dict]:
    """One 28 x 28 MNIST digit -> JPEG bytes of a phone photo of it written on paper, and the conditions."""
    style = pick_style(rng, split)
    w, h = frame(style, size)
    digit_h = int(min(w, h) * rng.uniform(0.2, 0.5))
    alpha = pen_layer(digit, digit_h, rng.uniform(*PENS[style["pen"]][0]))
    jpeg, conditions = photograph(alpha, rng, style, size)
    return jpeg, {**conditions, "digit_px": digit_h}


def photograph(alpha: Image.Image, rng: np.random.Generator, style: dict, size: str) -> tuple[bytes, dict]:
    """Writing (an L alpha layer, 255 = the pen's full stroke) on paper, tilted, lit, grained, as a phone's JPEG."""
    pen, paper, light, ink_name, orientation = (style[k] for k in ("pen", "paper", "light", "ink", "orientation"))
    w, h = frame(style, size)
    strengths = PENS[pen][1]
    tilt = float(rng.uniform(-10, 10))
    alpha = _perspective(alpha, rng, tilt=tilt, skew=0.06)
    blur = float(rng.uniform(0.3, 1.5) * min(w, h) / 1200)
    alpha = alpha.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(alpha, dtype=np.float32) * np.float32(rng.uniform(*strengths) / 255)
    if pen == "pencil":  # graphite catches on the paper's tooth: broken, grainy strokes
        a *= rng.uniform(0.55, 1.0, a.shape).astype(np.float32)
    full = np.zeros((h, w), dtype=np.float32)
    lw, lh = alpha.size
    left = int(rng.uniform(0.08 * w, max(0.08 * w + 1, 0.92 * w - lw)))
    top = int(rng.uniform(0.08 * h, max(0.08 * h + 1, 0.92 * h - lh)))
    full[top : top + lh, left : left + lw] = a[: h - top, : w - left]
    lines = None
    if style["ruled"]:  # faint blue rules a few mm apart, photographed slightly askew; drawn small, enlarged soft
        rule = Image.new("L", (w // 4, h // 4), 0)
        step, slope = h / 4 * rng.uniform(0.05, 0.08), np.tan(np.radians(tilt / 3))
        for k in range(-2, int(h / 4 / step) + 3):
            y = k * step + rng.uniform(0, step)
            ImageDraw.Draw(rule).line([(0, y), (w / 4, y + slope * w / 4)], fill=255, width=1)
        strength = np.float32(rng.uniform(0.12, 0.25) / 255)
        lines = np.asarray(rule.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) * strength
    lit = _light(rng, light, w, h)
    grain = _grain(rng, w, h, float(rng.uniform(0.01, 0.035))) * np.float32(255)
    pen_rgb, rule_rgb = np.array(INKS[ink_name], np.float32) / 255, np.array((150, 180, 225), np.float32) / 255
    image = np.empty((h, w, 3), dtype=np.uint8)
    for c, paper_value in enumerate(PAPERS[paper]):
        # Ink and rules absorb light in proportion to their strength; the lamp lights paper and ink alike.
        reflect = full * -(1 - pen_rgb[c])
        reflect += 1
        if lines is not None:
            reflect *= 1 - lines * (1 - rule_rgb[c])
        reflect *= np.float32(paper_value)
        reflect += grain
        reflect *= lit
        image[:, :, c] = np.clip(reflect, 0, 255, out=reflect)
    shown = Image.fromarray(image)
    stored = shown.transpose(STORE[orientation]) if orientation in STORE else shown
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    quality = int(rng.integers(60, 96))
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue(), {**style, "size": size, "quality": quality, "tilt": round(tilt, 1)}


def iter_photos(images: np.ndarray, labels: np.ndarray, count: int, *, seed: int, size: str = "2mp",
                split: str = "tune") -> Iterator[Photo]:
    """The first `count` digits as photos; photo i depends only on (seed, size, split, i). Tune on train digits, measure on test."""
    if split not in ("tune", "held-out"):
        raise ValueError(f"split must be 'tune' or 'held-out', not {split!r}")
    stream = (list(SIZES).index(size), 0 if split == "tune" else 1)
    for i in range(min(count, len(images))):
        jpeg, conditions = render(images[i], np.random.default_rng([seed, *stream, i]), size=size, split=split)
        yield Photo(jpeg, int(labels[i]), {"index": i, **conditions})
