"""runtime/answers.py: the eleven-way output read back as ten digit probabilities and a not-a-digit decision."""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.answers import CLASSES, NOT_A_DIGIT, answers, split


def test_split_renormalizes_the_digits_and_scores_their_share():
    outputs = np.zeros((2, CLASSES), np.float32)
    outputs[0, 3], outputs[0, 5], outputs[0, NOT_A_DIGIT] = 0.3, 0.1, 0.6
    outputs[1, 7] = 1.0
    probabilities, score = split(outputs)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(probabilities[0, [3, 5]], [0.75, 0.25], rtol=1e-6)
    np.testing.assert_allclose(score, [0.4, 1.0], rtol=1e-6)  # 1 - P(not a digit)


def test_all_mass_on_not_a_digit_gives_a_uniform_guess_not_nan():
    outputs = np.zeros((1, CLASSES), np.float32)
    outputs[0, NOT_A_DIGIT] = 1.0
    probabilities, score = split(outputs)
    assert np.isfinite(probabilities).all() and np.allclose(probabilities, 0.1)
    assert score[0] == 0


def test_threshold_decides_is_digit():
    outputs = np.zeros((3, CLASSES), np.float32)
    outputs[:, 2] = [0.9, 0.5, 0.1]
    outputs[:, NOT_A_DIGIT] = 1 - outputs[:, 2]
    found = answers(outputs, 0.5)
    assert found.is_digit.tolist() == [True, True, False]
    assert found.digits.tolist() == [2, 2, 2]
