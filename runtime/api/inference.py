"""One model run for a request, shared by the v1 and v2 protocols: timed, counted in the metrics, read as answers."""

from __future__ import annotations

import time

import numpy as np

from mnist_edge.runtime.answers import Answers, answers
from mnist_edge.runtime.registry import ModelSlot
from mnist_edge.runtime.api.state import state


def ms(seconds: float) -> float:
    """Seconds as milliseconds to the microsecond, as every timing in an answer is given."""
    return round(seconds * 1000, 3)


def run_model(slot: ModelSlot, batch: np.ndarray) -> tuple[Answers, float]:
    """One predict call, timed and counted in the metrics, read back as digits and not-a-digit decisions."""
    started = time.perf_counter()
    outputs = slot.backend.predict(batch)
    seconds = time.perf_counter() - started
    state().metrics.inference(slot.name, seconds)
    return answers(outputs, slot.threshold), ms(seconds)
