"""The backends one by one: provider selection, quantized I/O, dynamic batches, threads, broken files."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mnist_edge.convert.formats import INT8
from mnist_edge.runtime.backends import BACKENDS, backend_class
from mnist_edge.runtime.backends.onnx import OnnxBackend, select_providers
from mnist_edge.runtime.errors import ModelLoadError, UnknownNameError
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.preprocess import scale_pixels

SERVING = ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")


def load(models, name: str):
    entry = read_manifest(models)["artifacts"][name]
    backend = backend_class(entry["format"])(models / entry["file"])
    backend.load()
    return backend


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)


def test_registry_is_keyed_by_format():
    assert set(BACKENDS) == {"tflite", "onnx", "keras"}
    with pytest.raises(UnknownNameError, match="valid: keras, onnx, tflite"):
        backend_class("tensorrt-engine")


@pytest.mark.parametrize(("wanted", "available", "chosen"), [
    (["CPUExecutionProvider"], ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
    (["CUDAExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"],
     ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    (["TensorrtExecutionProvider", "CUDAExecutionProvider"],
     ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
     ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], ["AzureExecutionProvider", "CPUExecutionProvider"],
     ["CPUExecutionProvider"]),
    (["OpenVINOExecutionProvider"], ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
])
def test_provider_selection_keeps_priority_and_falls_back_to_cpu(wanted, available, chosen):
    assert select_providers(wanted, available) == chosen


def test_missing_provider_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="mnist_edge.runtime.backends.onnx"):
        select_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"])
    assert "CUDAExecutionProvider" in caplog.text and "falling back" in caplog.text


def test_onnx_reports_the_providers_actually_in_use(shipped_models):
    import onnxruntime

    backend = OnnxBackend(shipped_models / "model_fp32.onnx",
                          providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    backend.load()
    in_use = backend.info()["providers"]
    assert in_use[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in in_use) == ("CUDAExecutionProvider" in onnxruntime.get_available_providers())


@pytest.mark.parametrize("name", SERVING)
def test_probabilities_for_any_batch_size(shipped_models, images, name):
    backend = load(shipped_models, name)
    whole = backend.predict(images)
    assert whole.shape == (16, 11) and whole.dtype == np.float32  # ten digits and not-a-digit
    np.testing.assert_allclose(whole.sum(axis=1), 1, atol=0.02)
    for n in (1, 3):
        np.testing.assert_allclose(backend.predict(images[:n]), whole[:n], atol=1e-5)


def test_full_integer_model_quantizes_inside_the_backend(shipped_models, mnist):
    backend = load(shipped_models, "tflite-int8")
    spec = backend.tensors()
    assert spec["inputs"][0]["dtype"] == "int8" and spec["outputs"][0]["dtype"] == "int8"
    digits = scale_pixels(mnist.x_test[:200])  # real inputs: on noise, int8 and fp32 may read different things
    reference = load(shipped_models, "tflite-fp32").predict(digits)
    # Float in, float out: the int8 scale and zero point never reach the caller (they would be off by tens).
    outputs = backend.predict(digits)
    assert outputs.dtype == np.float32 and np.allclose(outputs.sum(axis=1), 1, atol=0.05)
    assert np.abs(outputs - reference).max() < INT8.max_abs_diff


@pytest.mark.parametrize("name", ["tflite-int8", "onnx-int8"])
def test_concurrent_predictions_equal_sequential_ones(shipped_models, images, name):
    backend = load(shipped_models, name)
    sequential = [backend.predict(images[i : i + 1]) for i in range(len(images))]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda i: backend.predict(images[i : i + 1]), list(range(len(images))) * 4))
    for i, probs in enumerate(concurrent):
        np.testing.assert_array_equal(probs, sequential[i % len(images)])


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "keras"])
def test_corrupt_and_missing_files_raise_model_load_error(tmp_path, fmt):
    suffix = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}[fmt]
    corrupt = tmp_path / f"model{suffix}"
    corrupt.write_bytes(b"not a model at all" * 10)
    for path in (corrupt, tmp_path / f"missing{suffix}"):
        with pytest.raises(ModelLoadError, match="cannot load"):
            backend_class(fmt)(path).load()


def test_predict_docstring_gives_the_output_shape():
    from mnist_edge.runtime.answers import CLASSES
    from mnist_edge.runtime.backends.base import Backend

    assert f"N x {CLASSES} probabilities" in Backend.predict.__doc__
