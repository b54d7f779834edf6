"""Inference latency of every shipped model, one image and a batch of 64: `pytest benchmarks --benchmark-only`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_edge.runtime.backends import backend_class
from mnist_edge.runtime.manifest import read_manifest

MODELS = Path(__file__).resolve().parent.parent / "models"
MANIFEST = read_manifest(MODELS)


@pytest.fixture(scope="module", params=sorted(MANIFEST["artifacts"]))
def backend(request):
    entry = MANIFEST["artifacts"][request.param]
    if entry["format"] == "keras":
        pytest.importorskip("tensorflow", reason="the keras backend needs the train extra")
    loaded = backend_class(entry["format"])(MODELS / entry["file"])
    loaded.load()
    return loaded


@pytest.mark.parametrize("batch", [1, 64])
def test_predict(benchmark, backend, batch):
    images = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
    benchmark.group = f"predict batch={batch}"
    probs = benchmark(backend.predict, images)
    assert probs.shape == (batch, 10)
