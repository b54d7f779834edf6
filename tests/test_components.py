"""runtime/components.py: its labels partition the ink exactly as an 8- (or 4-) connected flood fill does."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from mnist_edge.runtime.components import components


def bfs_labels(mask: np.ndarray, *, diagonal: bool = True) -> np.ndarray:
    """A plain flood fill, the reference the run-based labelling must agree with."""
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if diagonal or abs(dy) + abs(dx) == 1]
    labels = np.zeros(mask.shape, dtype=np.int32)
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        queue = deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            for dy, dx in steps:
                ny, nx = cy + dy, cx + dx
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    queue.append((ny, nx))
    return labels


@pytest.mark.parametrize("diagonal", [True, False])
@pytest.mark.parametrize("density", [0.1, 0.4, 0.6])
def test_components_agree_with_a_flood_fill(density, diagonal):
    rng = np.random.default_rng(int(density * 10))
    for _ in range(20):
        mask = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < density
        labels, count = components(mask, diagonal=diagonal)
        expected = bfs_labels(mask, diagonal=diagonal)
        assert count == expected.max()
        assert ((labels > 0) == mask).all()
        # The same partition: each expected component is exactly one of ours, and the other way round.
        pairs = set(zip(labels[mask].tolist(), expected[mask].tolist()))
        assert len(pairs) == count


def test_components_of_nothing():
    labels, count = components(np.zeros((5, 7), dtype=bool))
    assert count == 0 and not labels.any()
