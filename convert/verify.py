"""Verification: every artifact is measured against the test set and the Keras model before it is accepted."""

from __future__ import annotations

import numpy as np

from mnist_edge.convert.formats import Format
from mnist_edge.runtime.answers import answers
from mnist_edge.runtime.backends.base import Backend
from mnist_edge.runtime.errors import ConversionError

EVAL_BATCH = 500


def predict_all(backend: Backend, images: np.ndarray) -> np.ndarray:
    """Model outputs for every image, in batches so memory stays flat."""
    return np.concatenate([backend.predict(images[i : i + EVAL_BATCH]) for i in range(0, len(images), EVAL_BATCH)])


def compare(outputs: np.ndarray, labels: np.ndarray, reference: tuple[np.ndarray, float], *,
            threshold: float | None = None) -> dict:
    """Accuracy, top-1 and is-digit agreement with the reference, and the largest output difference.

    `outputs` and the reference's are N x 11 model outputs, each read at its own not-a-digit threshold (the
    reference's when `threshold` is None); the first len(labels) rows are labelled test digits and the rest are
    drawings that are not digits, where only the is-digit decision is compared.
    """
    reference_outputs, reference_threshold = reference
    found = answers(outputs, reference_threshold if threshold is None else threshold)
    expected = answers(reference_outputs, reference_threshold)
    digits = len(labels)
    predicted = found.digits[:digits]
    return {
        "accuracy": round(float((predicted == labels).mean()), 5),
        "agreement": round(float((predicted == expected.digits[:digits]).mean()), 5),
        "is_digit_agreement": round(float((found.is_digit == expected.is_digit).mean()), 5),
        "max_abs_diff": round(float(np.abs(outputs - reference_outputs).max()), 6),
    }


def check(fmt: Format, metrics: dict, reference_accuracy: float) -> None:
    """Raise ConversionError when an artifact drifts beyond its format's tolerance."""
    limit = fmt.tolerance
    problems = []
    if metrics["accuracy"] < reference_accuracy - limit.max_accuracy_drop:
        problems.append(f"accuracy {metrics['accuracy']:.4f} is more than {limit.max_accuracy_drop:.3f} "
                        f"below Keras' {reference_accuracy:.4f}")
    if metrics["agreement"] < limit.min_agreement:
        problems.append(f"agrees with Keras on {metrics['agreement']:.4f} of images (< {limit.min_agreement})")
    if metrics["is_digit_agreement"] < limit.min_is_digit_agreement:
        problems.append(f"agrees with Keras on is-digit for {metrics['is_digit_agreement']:.4f} of images "
                        f"(< {limit.min_is_digit_agreement})")
    if metrics["max_abs_diff"] > limit.max_abs_diff:
        problems.append(f"max |p - p_keras| {metrics['max_abs_diff']:.4g} > {limit.max_abs_diff}")
    if problems:
        raise ConversionError(f"{fmt.name} failed verification: " + "; ".join(problems), artifact=fmt.name, **metrics)
