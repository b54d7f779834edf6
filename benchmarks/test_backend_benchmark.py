"""In-process inference of every model in the manifest at batch 1, 8 and 64, answers checked against MNIST labels.

Run: MNIST_DATA=../shared/data/mnist pytest benchmarks/test_backend_benchmark.py -o addopts= --benchmark-only
"""

from __future__ import annotations

import importlib.util

import pytest

from mnist_edge.runtime.answers import split
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.registry import ModelRegistry

BATCHES = (1, 8, 64)
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def registry(models_dir) -> ModelRegistry:
    """Every artifact of the manifest loaded the way the server loads it (Keras only where TensorFlow is installed)."""
    artifacts = read_manifest(models_dir)["artifacts"]
    names = [n for n, e in artifacts.items() if e["format"] != "keras" or HAS_TENSORFLOW]
    return ModelRegistry.from_manifest(models_dir, names=names)


@pytest.mark.parametrize("batch", BATCHES)
def test_inference(benchmark, registry, model, batch, digits):
    if model not in registry.slots:
        pytest.skip(f"{model} needs TensorFlow: pip install -e '.[train]'")
    slot = registry.get(model)  # raises with the load error when the file failed to load
    images, labels = digits[0][:batch], digits[1][:batch]
    benchmark.group = f"inference, batch {batch}"
    benchmark.extra_info.update(model=model, format=slot.entry["format"], precision=slot.entry.get("precision"),
                                batch=batch, size_bytes=slot.entry.get("size_bytes"),
                                accuracy=slot.entry.get("accuracy"))
    outputs = benchmark(slot.backend.predict, images)
    assert outputs.shape == (batch, 11)
    wrong = int((split(outputs)[0].argmax(axis=1) != labels).sum())
    assert wrong <= batch // 20, f"{model}: {wrong} of {batch} MNIST test digits answered wrong"
