"""Photos of paper: divide out uneven light and grain, threshold the ink, keep the digit's strokes and nothing else."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from mnist_edge.runtime.components import components
from mnist_edge.runtime.decode import PHOTO_SIDE
from mnist_edge.runtime.errors import BlankImageError
from mnist_edge.runtime.morphology import rank_filter

# Light varies over the page far more slowly than a pen stroke: the background is estimated at 1/BG_STEP
# scale with a closing (max then min) wider than the thickest stroke, which keeps shadow edges and fills ink.
BG_STEP = 8
BG_CLOSE = 7  # px at 1/8 scale: a felt-tip stroke on a digit filling half an 800 px frame is ~5
NOISE_SIGMAS = 6.0  # paper grain and JPEG noise, measured robustly (MAD), stay this far below the ink threshold
MIN_INK = 0.08  # a ruled line absorbs < 8 % of the light: fainter than a pencil, so never ink
PEAK_SHARE = 0.3  # of the strongest ink: the faint halo around a stroke is not stroke
FLAT = 0.06  # a clean canvas or scan: its border's 10th-90th percentile spread is under this, its page is the border's colour
LABEL_STEP = 8  # components are found at 1/8 scale, with strokes grown so a broken pencil line stays one
LINK = 1  # px at 1/8 scale that strokes are grown by: gaps up to ~16 px at 800 px are bridged
NEAR = 0.15  # other components whose box comes this close (of the digit's size) belong to it (a 5's flag)
BORDER_PENALTY = 0.2  # a component touching the frame is usually a shadow edge or the paper's edge
PIECE = 0.02  # of the digit's ink: lighter nearby components are specks, not a part of it


def is_photo(ordered: np.ndarray, sample: np.ndarray) -> bool:
    """Whether grey pixels (in [0, 1]) are lit paper rather than a clean canvas or scan: from the sorted border and a sparse grid."""
    # Order statistics by sort and partition: np.percentile's overhead alone would double a canvas' normalize time.
    n = len(ordered)
    if ordered[(9 * n) // 10] - ordered[n // 10] >= FLAT:  # light falling off across the frame
        return True
    # A vignette darkens the whole border alike; then most of the page is unlike its border.
    far = np.abs(sample.ravel() - ordered[n // 2])
    return float(np.partition(far, far.size // 2)[far.size // 2]) >= FLAT / 2


def _background(grey: Image.Image) -> np.ndarray:
    """The paper's brightness without the ink, as float32 H x W (> 0): a closing at 1/8 scale, smoothly enlarged."""
    small = np.asarray(grey.reduce(BG_STEP) if min(grey.size) >= BG_STEP * BG_CLOSE else grey)
    closed = rank_filter(rank_filter(small, BG_CLOSE, np.maximum), BG_CLOSE, np.minimum)
    smooth = Image.fromarray(closed).filter(ImageFilter.BoxBlur(1)).resize(grey.size, Image.Resampling.BILINEAR)
    return np.maximum(np.asarray(smooth, dtype=np.float32), 1)


def _digit_mask(ink: np.ndarray, strokes: np.ndarray, *, line: bool) -> np.ndarray:
    """The strokes that make the digit: the heaviest component (away from the frame) and those close to it; with
    `line`, every component away from the frame as heavy as a piece of it (a written number's other digits)."""
    h, w = strokes.shape
    mass = np.asarray(Image.fromarray(np.where(strokes, ink, np.float32(0)), mode="F").reduce(LABEL_STEP))
    labels, count = components(rank_filter(mass > 0, 2 * LINK + 1, np.maximum), diagonal=False)
    if count == 0:
        raise BlankImageError("the photo has no ink on it (blank paper)")
    weights = np.bincount(labels.ravel(), weights=mass.ravel(), minlength=count + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    score = weights.copy()
    score[edge] *= BORDER_PENALTY
    score[0] = 0
    best = int(score.argmax())
    boxes = {}
    for k in range(1, count + 1):
        ys, xs = np.nonzero(labels == k)
        boxes[k] = (ys.min(), ys.max(), xs.min(), xs.max())
    y0, y1, x0, x1 = boxes[best]
    reach = np.inf if line else NEAR * max(y1 - y0, x1 - x0, 1)
    keep = [best] + [k for k, (a, b, c, d) in boxes.items() if k != best and k not in edge
                     and a <= y1 + reach and b >= y0 - reach and c <= x1 + reach and d >= x0 - reach
                     and weights[k] >= PIECE * weights[best]]
    small = Image.fromarray(np.isin(labels, keep).astype(np.uint8))
    # Pillow's reduce() keeps a partial last block, so the nearest-neighbour enlargement lines up with the strokes.
    return np.asarray(small.resize((small.width * LABEL_STEP, small.height * LABEL_STEP), Image.Resampling.NEAREST))[:h, :w] > 0


def photo_ink(grey: np.ndarray, *, dark_ink: bool, line: bool = False) -> np.ndarray:
    """A photo of a digit on paper (uint8 H x W) -> ink in [0, 1] (1 = the pen's full strength), only the digit's strokes
    (with `line`, every written stroke away from the frame: a number's digits).

    The result has the photo's shape, box-reduced first when its long side is 1,600 px or more.
    """
    image = Image.fromarray(grey if dark_ink else 255 - grey)
    if max(image.size) >= 2 * PHOTO_SIDE:  # an undecoded or array photo: the digit needs no more than decode keeps
        image = image.reduce(max(image.size) // PHOTO_SIDE)
    background = _background(image)
    # Ink absorbs a share of the light that reaches it: dividing by the lit paper leaves that share alone.
    ink = np.clip(1 - np.asarray(image, dtype=np.float32) / background, 0, 1)
    sample = ink[::3, ::3]  # robust statistics of a ninth of the page are as good as of all of it
    centre = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - centre)))
    peak = float(np.percentile(sample, 99.9))
    threshold = max(centre + NOISE_SIGMAS * noise, MIN_INK, PEAK_SHARE * peak)
    strokes = ink > threshold
    if peak < MIN_INK or not strokes.any():
        raise BlankImageError("the photo has no ink on it (blank paper)", contrast=round(peak, 3))
    keep = _digit_mask(ink, strokes, line=line)
    full = float(np.percentile(ink[strokes & keep], 90))
    # The strokes stretched to full strength (MNIST's are ~1.0), the grain below the threshold set to zero.
    return np.where(keep, np.clip((ink - threshold) / max(full - threshold, 1e-3), 0, 1), 0).astype(np.float32)
