"""train/calibrate.py: temperature, threshold and reliability, checked on data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge.train.calibrate import choose_threshold, fit_temperature, reliability


def _sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 3, (4000, 11))
    labels = _sample(true_logits, rng)
    # An overconfident model: the right logits, twice too sharp. Dividing by 2 undoes it.
    assert fit_temperature(true_logits * 2, labels) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.1)


def test_threshold_rejects_at_most_the_asked_share():
    scores = np.random.default_rng(1).beta(8, 1, 5000)
    threshold = choose_threshold(scores, false_rejection=0.01)
    assert (scores < threshold).mean() <= 0.01
    assert (scores < threshold).mean() > 0.005  # the highest such threshold, not a timid one


def test_reliability_of_calibrated_and_overconfident_answers():
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet(np.ones(10) * 0.3, 20000)
    labels = np.array([rng.choice(10, p=p) for p in probabilities])  # drawn from the stated probabilities
    calibrated = reliability(probabilities, labels)
    assert calibrated["ece"] < 0.02 and sum(b["count"] for b in calibrated["bins"]) == 20000
    sharpened = probabilities ** 4 / (probabilities ** 4).sum(axis=1, keepdims=True)
    assert reliability(sharpened, labels)["ece"] > 0.05
