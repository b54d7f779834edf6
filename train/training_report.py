"""Evaluation report: accuracy, per-class accuracy, a confusion-matrix plot and a reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPORT_FILE = "training.json"
CONFUSION_FILE = "confusion_matrix.png"
RELIABILITY_FILE = "reliability.png"


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10 x 10 counts: row = true digit, column = predicted digit."""
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels.astype(int), predicted.astype(int)), 1)
    return matrix


def summarize(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, per-class accuracy and the confusion matrix of N x 10 probabilities against labels."""
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {
        "accuracy": float((predicted == labels).mean()),
        "count": int(len(labels)),
        "errors": int((predicted != labels).sum()),
        "per_class_accuracy": {str(d): round(float(a), 5) for d, a in enumerate(per_class)},
        "confusion_matrix": matrix.tolist(),
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no screen on a Pi or in CI
    import matplotlib.pyplot as plt

    return plt


def plot_reliability(calibration: dict, path: Path, *, title: str) -> None:
    """Write a reliability diagram: accuracy against confidence per bin, the diagonal being perfect calibration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    bins = calibration["bins"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    ax.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, color="tab:blue", label="accuracy in the bin")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    # The gap between a bar's top and its dot is the miscalibration of that bin.
    ax.plot(centres, [b["confidence"] for b in bins], "o", color="tab:orange", ms=5, label="mean confidence in the bin")
    for centre, b in zip(centres, bins):
        ax.text(centre, 0.02, str(b["count"]), ha="center", fontsize=6, rotation=90, color="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (the top digit's probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray | list, path: Path, *, title: str) -> None:
    """Write the confusion matrix as a PNG, off-diagonal errors highlighted."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    # Colour the errors only: the diagonal's thousands would wash every mistake out to white.
    image = ax.imshow(errors, cmap="Reds")
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
                    color="black" if row != col else "tab:blue", fontweight="bold" if row == col else "normal")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="misclassified images")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
