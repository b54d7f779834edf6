"""The accuracy a trained model must reach before `convert` turns it into anything (no heavy imports: the CLI's
parser reads the default)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mnist_edge.runtime.errors import ConversionError

# The least share of MNIST test digits Keras must read right: below it a model misreads one digit in five, broken
# or barely trained. Low enough for the smallest real trials: the seed network after 2 epochs on 4,000 images
# (tests/test_extras.py) reads 88.0 % of the first 5,000 test digits; the default one after 1 epoch on 2,000, 26 %.
MIN_ACCURACY = 0.8


def check_accuracy(accuracy: float, labels: Sequence[int], floor: float, run: Path) -> None:
    """Refuse a model no better than chance (always answering the commonest test digit) or below `floor`."""
    chance = max(Counter(int(label) for label in labels).values()) / len(labels)
    if accuracy <= chance or accuracy < floor:
        why = (f"no better than always answering the commonest digit ({chance:.2%})" if accuracy <= chance
               else f"below the {floor:.2%} floor (--min-accuracy)")
        raise ConversionError(f"{run}: its model reads {accuracy:.2%} of {len(labels):,} MNIST test digits right, "
                              f"{why}; train it longer (more --epochs or a larger --limit)", accuracy=accuracy,
                              chance=chance, floor=floor)
