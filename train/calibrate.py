"""Calibration: a temperature folded into the last layer, the not-a-digit threshold, and how well confidence holds."""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.answers import split

TEMPERATURES = np.exp(np.linspace(np.log(0.5), np.log(4.0), 61))  # a grid fine enough: NLL is flat near its minimum
FALSE_REJECTION = 0.005  # of validation drawings; the target is 1 % on drawings never seen (test writers are harder)
BINS = 15  # reliability-diagram bins of equal width


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of the labels (column indices) on a validation set."""
    rows = np.arange(len(labels))

    def nll(t: float) -> float:
        return float(-np.log(np.maximum(_softmax(logits / t)[rows, labels], 1e-12)).mean())

    return float(min(TEMPERATURES, key=nll))


def fold_temperature(model, temperature: float) -> None:
    """Divide the logits layer's weights by the temperature, so every exported format is calibrated too."""
    from mnist_edge.train.models import LOGITS_NAME

    layer = model.get_layer(LOGITS_NAME)
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])


def choose_threshold(digit_scores: np.ndarray, *, false_rejection: float = FALSE_REJECTION) -> float:
    """The highest digit-score threshold that rejects at most `false_rejection` of these real digits."""
    return float(np.quantile(digit_scores, false_rejection, method="lower"))


def reliability(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Expected calibration error of the top digit's confidence, and the per-bin figures a diagram draws."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, BINS - 1)
    bins, ece = [], 0.0
    for b in range(BINS):
        mask = which == b
        if mask.any():
            gap = abs(float(confidence[mask].mean()) - float(correct[mask].mean()))
            ece += mask.mean() * gap
            bins.append({"low": round(float(edges[b]), 4), "high": round(float(edges[b + 1]), 4), "count": int(mask.sum()),
                         "confidence": round(float(confidence[mask].mean()), 5), "accuracy": round(float(correct[mask].mean()), 5)})
    return {"ece": round(float(ece), 5), "count": int(len(labels)), "bins": bins}


def decision_figures(outputs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Accuracy, false rejections and calibration of real digits' N x 11 outputs at a threshold."""
    probabilities, score = split(outputs)
    return {"count": int(len(labels)), "accuracy": round(float((probabilities.argmax(axis=1) == labels).mean()), 5),
            "false_rejection": round(float((score < threshold).mean()), 5),
            "calibration": reliability(probabilities, labels)}


def flagged(outputs: np.ndarray, threshold: float) -> float:
    """Share of non-digits' N x 11 outputs whose digit score falls below the threshold."""
    return round(float((split(outputs)[1] < threshold).mean()), 5) if len(outputs) else 0.0
