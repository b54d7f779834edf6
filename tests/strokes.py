"""MNIST digits as pen strokes: the paths a person's mouse would take to draw them on the 280 x 280 canvas, or a
number's digits side by side on the wide one."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mnist_edge.train.drawn import thin

UP = 4  # thin at 4x, where the skeleton follows the strokes' middles smoothly
NEIGHBOURS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))  # straight steps first


def _skeleton(digit: np.ndarray) -> set[tuple[int, int]]:
    big = Image.fromarray(digit).resize((28 * UP, 28 * UP), Image.Resampling.BICUBIC)
    ys, xs = np.nonzero(thin(np.asarray(big) > 127))
    return set(zip(ys.tolist(), xs.tolist()))


def _next(point: tuple[int, int], pixels: set, visited: set) -> tuple[int, int] | None:
    for dy, dx in NEIGHBOURS:
        candidate = (point[0] + dy, point[1] + dx)
        if candidate in pixels and candidate not in visited:
            return candidate
    return None


def _degree(point: tuple[int, int], pixels: set) -> int:
    return sum((point[0] + dy, point[1] + dx) in pixels for dy, dx in NEIGHBOURS)


def _trace(pixels: set) -> list[list[tuple[int, int]]]:
    """Walk the skeleton into paths, starting at line ends first, each pixel once; a branch reaches its junction."""
    visited: set = set()
    paths = []
    while len(visited) < len(pixels):
        todo = pixels - visited
        ends = sorted(p for p in todo if _degree(p, pixels) == 1)
        point = ends[0] if ends else min(todo)
        path = [point]
        visited.add(point)
        while (step := _next(point, pixels, visited)) is not None:
            path.append(step)
            visited.add(step)
            point = step
        # Close the gap to an already drawn junction or loop start the walk stopped beside.
        joins = [(point[0] + dy, point[1] + dx) for dy, dx in NEIGHBOURS
                 if (point[0] + dy, point[1] + dx) in visited and (point[0] + dy, point[1] + dx) not in path[-3:]]
        if joins:
            path.append(joins[0])
        if len(path) >= 3:
            paths.append(path)
    return paths


def strokes(digit: np.ndarray, *, canvas: int = 280, height: int = 200, every: int = 3,
            centre: tuple[float, float] | None = None) -> list[list[tuple[float, float]]]:
    """A 28 x 28 uint8 MNIST digit -> strokes of (x, y) canvas points, the digit about `height` px tall and centred
    on `centre` (the square canvas's middle by default)."""
    paths = _trace(_skeleton(digit))
    points = np.array([p for path in paths for p in path], dtype=np.float64)
    top, left = points.min(axis=0)
    span = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]), 1.0)
    scale = height / span
    centre_x, centre_y = centre or (canvas / 2, canvas / 2)
    offset_y = centre_y - np.ptp(points[:, 0]) * scale / 2
    offset_x = centre_x - np.ptp(points[:, 1]) * scale / 2
    out = []
    for path in paths:
        kept = path[::every] + ([path[-1]] if (len(path) - 1) % every else [])
        out.append([((x - left) * scale + offset_x, (y - top) * scale + offset_y) for y, x in kept])
    return out


def number_strokes(digits: list[np.ndarray], *, size: tuple[int, int] = (840, 280),
                   height: int = 170) -> list[list[tuple[float, float]]]:
    """MNIST digits written left to right on a canvas of `size`, each about `height` px tall and centred in its own
    equal slot (so gaps depend on each digit's width, as in handwriting); every digit's strokes in turn."""
    width, tall = size
    slot = width / len(digits)
    return [path for n, digit in enumerate(digits)
            for path in strokes(digit, height=min(height, slot - 16), centre=((n + 0.5) * slot, tall / 2))]
