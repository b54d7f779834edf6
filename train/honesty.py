"""After fitting: calibrate on held-back training digits, choose the not-a-digit threshold, and measure both on
data no training or tuning step saw (drawn MNIST test digits, every not-a-digit generator's own evaluation stream)."""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.answers import NOT_A_DIGIT, split
from mnist_edge.train.calibrate import choose_threshold, decision_figures, fit_temperature, flagged, fold_temperature
from mnist_edge.train.negatives import GENERATORS, TRAINING, negative_images


def _predict(model, images: np.ndarray) -> np.ndarray:
    return model.predict(images, batch_size=1000, verbose=0) if len(images) else np.empty((0, 11), np.float32)


def calibrate(model, drawn: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, *, seed: int, negatives: int) -> dict:
    """Fit and fold the temperature, then choose the threshold, on the validation digits `val_x`, `drawn`;
    measure the threshold on the training generators' validation stream too; returns what was chosen and what
    it gave."""
    import keras

    from mnist_edge.train.models import OUTPUT_NAME

    neg, _ = negative_images(TRAINING, negatives, val_x, val_y, seed=seed, stream="validation")
    # The temperature sets the ten digit probabilities the API answers (a softmax of the ten digit logits: the
    # renormalization drops the eleventh), so it is fitted on them, for what the canvas sends: drawn digits.
    # The softmax's input: the logits layer's output would be ambiguous once stroke views share the layer.
    logits = keras.Model(model.inputs, model.get_layer(OUTPUT_NAME).input).predict(drawn, batch_size=1000, verbose=0)
    temperature = fit_temperature(logits[:, :NOT_A_DIGIT], val_y.astype(np.int64))
    fold_temperature(model, temperature)
    drawn_outputs = _predict(model, drawn)
    threshold = choose_threshold(split(drawn_outputs)[1])
    return {"threshold": round(threshold, 6), "temperature": round(temperature, 4),
            "validation": {"drawn": decision_figures(drawn_outputs, val_y, threshold),
                           "flagged": flagged(_predict(model, neg), threshold), "negatives": len(neg)}}


def evaluation_sets(x_test: np.ndarray, y_test: np.ndarray, *, seed: int, drawn_count: int,
                    negatives: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drawn test digits (the drawn-eval set) with their labels, and every generator's evaluation stream with
    each drawing's generator: drawn once, to measure several models on."""
    from mnist_edge.runtime.preprocess import normalize
    from mnist_edge.train.drawn import iter_drawn

    drawn = [(normalize(image), label) for image, label, _ in iter_drawn(x_test, y_test, drawn_count, seed)]
    images = np.stack([image for image, _ in drawn]) if drawn else np.empty((0, 28, 28, 1), np.float32)
    neg, kinds = negative_images(tuple(GENERATORS), negatives, x_test, y_test, seed=seed, stream="evaluation")
    return images, np.array([label for _, label in drawn]), neg, kinds


def measure_on(model, sets: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], threshold: float) -> dict:
    """`evaluation_sets`' drawn digits and non-digits through a model, at the chosen threshold."""
    images, labels, neg, kinds = sets
    figures = {"drawn_test": decision_figures(_predict(model, images), labels, threshold)}
    outputs = _predict(model, neg)
    generators = {name: {"held_out": held_out, "count": int((kinds == name).sum()),
                         "flagged": flagged(outputs[kinds == name], threshold)}
                  for name, (held_out, _) in GENERATORS.items()}
    held_out = np.isin(kinds, [n for n, (h, _) in GENERATORS.items() if h])
    figures["not_digits"] = {"held_out_flagged": flagged(outputs[held_out], threshold),
                             "training_generators_flagged": flagged(outputs[~held_out], threshold),
                             "generators": generators}
    return figures


def measure(model, x_test: np.ndarray, y_test: np.ndarray, threshold: float, *, seed: int, drawn_count: int,
            negatives: int) -> dict:
    """Drawn test digits (the drawn-eval set) and every generator's evaluation stream, at the chosen threshold."""
    return measure_on(model, evaluation_sets(x_test, y_test, seed=seed, drawn_count=drawn_count, negatives=negatives),
                      threshold)
