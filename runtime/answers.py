"""The model's answer read back apart: ten digit probabilities, and whether the drawing is a digit at all.

Every model has one output of eleven softmax probabilities: the digits 0-9, then "not a digit". The digit
probabilities the API shows are the first ten renormalized (what the model believes if it is a digit), and the
digit score is 1 - P(not a digit); below the manifest's threshold it is no digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_edge.runtime.errors import ModelLoadError

CLASSES = 11
NOT_A_DIGIT = 10  # the eleventh class's index
# What the answer is made of, as /v2 and a Triton export name and shape them (-1: the batch).
OUTPUTS = ({"name": "probabilities", "shape": [-1, 10]}, {"name": "digit_score", "shape": [-1, 1]})


@dataclass(frozen=True)
class Answers:
    """A batch's answers: N x 10 digit probabilities, N digit scores in [0, 1], N is-digit decisions."""

    probabilities: np.ndarray
    digit_score: np.ndarray
    is_digit: np.ndarray

    @property
    def digits(self) -> np.ndarray:
        """The most likely digit of each image (whether or not it is one)."""
        return self.probabilities.argmax(axis=1)


def split(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N x 11 model outputs -> (N x 10 digit probabilities summing to 1, N digit scores)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.ndim != 2 or outputs.shape[1] != CLASSES:
        raise ModelLoadError(f"the model's output has shape {outputs.shape}; mnist-edge models answer N x {CLASSES} "
                             "(ten digits and not-a-digit): train and convert it again")
    digits = outputs[:, :NOT_A_DIGIT]
    total = digits.sum(axis=1, keepdims=True)
    # An int8 model can put all its mass on "not a digit"; its digit guess is then uniform, not a division by 0.
    probabilities = np.divide(digits, total, out=np.full_like(digits, 1 / NOT_A_DIGIT), where=total > 0)
    # One output, not a sum of ten: an int8 model's rounding errors would add up over the ten.
    score = np.clip(1 - outputs[:, NOT_A_DIGIT], 0, 1)
    return probabilities, score


def answers(outputs: np.ndarray, threshold: float) -> Answers:
    """N x 11 model outputs and the manifest's threshold -> the batch's answers."""
    probabilities, score = split(outputs)
    return Answers(probabilities, score, score >= threshold)
