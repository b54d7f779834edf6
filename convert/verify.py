"""Verification: every artifact is measured against the test set and the Keras model before it is accepted."""

from __future__ import annotations

import numpy as np

from mnist_edge.convert.formats import Format
from mnist_edge.runtime.backends.base import Backend
from mnist_edge.runtime.errors import ConversionError

EVAL_BATCH = 500


def predict_all(backend: Backend, images: np.ndarray) -> np.ndarray:
    """Probabilities for every image, in batches so memory stays flat."""
    return np.concatenate([backend.predict(images[i : i + EVAL_BATCH]) for i in range(0, len(images), EVAL_BATCH)])


def compare(probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy, top-1 agreement with the reference and the largest probability difference."""
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": round(float((predicted == labels).mean()), 5),
        "agreement": round(float((predicted == reference.argmax(axis=1)).mean()), 5),
        "max_abs_diff": round(float(np.abs(probabilities - reference).max()), 6),
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
    if metrics["max_abs_diff"] > limit.max_abs_diff:
        problems.append(f"max |p - p_keras| {metrics['max_abs_diff']:.4g} > {limit.max_abs_diff}")
    if problems:
        raise ConversionError(f"{fmt.name} failed verification: " + "; ".join(problems), artifact=fmt.name, **metrics)
