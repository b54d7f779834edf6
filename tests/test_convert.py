"""Conversion: every format built from the tiny model, verified against Keras, published atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.convert.formats import FORMATS
from mnist_edge.runtime.answers import answers
from mnist_edge.runtime.backends import backend_class
from mnist_edge.runtime.errors import ConversionError
from mnist_edge.runtime.manifest import read_manifest, sha256_file
from mnist_edge.runtime.preprocess import scale_pixels
from mnist_edge.train.negatives import GENERATORS

REQUIRED = {"keras", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8"}


@pytest.fixture(scope="module")
def manifest(tiny_models):
    return read_manifest(tiny_models)


@pytest.fixture(scope="module")
def keras_reference(tiny_models, mnist):
    backend = backend_class("keras")(tiny_models / "model.keras")
    backend.load()
    images = scale_pixels(mnist.x_test[:500])
    return images, backend.predict(images)


def test_manifest_lists_every_format(manifest):
    assert REQUIRED <= set(manifest["artifacts"])
    assert manifest["default"] in manifest["artifacts"]
    assert manifest["training"]["config"]["arch"] == "cnn"
    assert manifest["conversion"]["versions"]["tf2onnx"]
    assert 0 < manifest["not_a_digit"]["threshold"] < 1 and manifest["not_a_digit"]["drawn_test"]["count"] > 0
    assert manifest["conversion"]["not_digit_images"] == 50 * len(GENERATORS)  # 50 of each generator (conftest.py)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_manifest_entry_describes_the_file(tiny_models, manifest, name):
    entry = manifest["artifacts"][name]
    path = tiny_models / entry["file"]
    assert entry["size_bytes"] == path.stat().st_size
    assert entry["sha256"] == sha256_file(path)
    assert entry["format"] == FORMATS[name].format and entry["precision"] == FORMATS[name].precision
    assert entry["inputs"][0]["shape"] == [-1, 28, 28, 1] and entry["outputs"][0]["shape"] == [-1, 11]
    assert 0 < entry["accuracy"] <= 1 and entry["agreement"] >= FORMATS[name].tolerance.min_agreement
    assert entry["is_digit_agreement"] >= FORMATS[name].tolerance.min_is_digit_agreement
    assert 0 < entry["threshold"] < 1


def test_each_artifact_has_its_own_threshold_chosen_as_training_chose_keras(tiny_models, manifest, mnist):
    from mnist_edge.train.calibrate import FALSE_REJECTION
    from mnist_edge.train.fit import TrainConfig, validation_drawings

    drawn, _ = validation_drawings(mnist.subset(n_train=4000), TrainConfig.from_report(manifest["training"]["config"]))
    artifacts = manifest["artifacts"]
    assert artifacts["keras"]["threshold"] == pytest.approx(manifest["not_a_digit"]["threshold"], abs=1e-5)
    for name, entry in artifacts.items():
        backend = backend_class(entry["format"])(tiny_models / entry["file"])
        backend.load()
        scores = np.sort(answers(backend.predict(drawn), entry["threshold"]).digit_score)
        rejected = int((scores < entry["threshold"]).sum())
        # At most the allowed share of these drawings below it, and no higher threshold would do.
        assert rejected <= FALSE_REJECTION * len(scores)
        assert scores[rejected] == pytest.approx(entry["threshold"], abs=1e-6)


@pytest.mark.parametrize("name", ["tflite-int8"])
def test_full_integer_model_declares_its_quantization(manifest, name):
    entry = manifest["artifacts"][name]
    for tensor in (entry["inputs"][0], entry["outputs"][0]):
        assert tensor["dtype"] == "int8"
        assert tensor["quantization"]["scale"] > 0


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_matches_keras(tiny_models, manifest, keras_reference, name):
    images, reference = keras_reference
    entry = manifest["artifacts"][name]
    backend = backend_class(entry["format"])(tiny_models / entry["file"])
    backend.load()
    probs = backend.predict(images)
    tolerance = FORMATS[name].tolerance
    assert probs.shape == (500, 11) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=0.05)
    assert np.abs(probs - reference).max() <= tolerance.max_abs_diff
    found, expected = answers(probs, entry["threshold"]), answers(reference, manifest["not_a_digit"]["threshold"])
    assert (found.digits == expected.digits).mean() >= tolerance.min_agreement - 0.005  # 500, not 2000, images
    assert (found.is_digit == expected.is_digit).mean() >= tolerance.min_is_digit_agreement - 0.005


def test_dynamic_batch_dimension(tiny_models, manifest, keras_reference):
    images, reference = keras_reference
    for name in ("tflite-fp32", "onnx-fp32"):
        entry = manifest["artifacts"][name]
        backend = backend_class(entry["format"])(tiny_models / entry["file"])
        backend.load()
        for n in (1, 7, 64):
            np.testing.assert_allclose(backend.predict(images[:n]), reference[:n], atol=1e-4)


def test_onnx_int8_keeps_its_input_and_output_names_and_shortens_the_rest(tiny_models, manifest):
    import onnx

    graph = onnx.load(tiny_models / manifest["artifacts"]["onnx-int8"]["file"]).graph
    assert [v.name for v in graph.input] == ["image"] and [v.name for v in graph.output] == ["probabilities"]
    inner = {name for node in graph.node for name in (*node.input, *node.output)} - {"", "image", "probabilities"}
    assert inner and all(name[0] == "t" and name[1:].isdigit() for name in inner), sorted(inner)[:5]
    assert all(node.name == f"{node.op_type}_{i}" for i, node in enumerate(graph.node))


def test_tflite_files_name_their_ops_without_the_keras_model_name(tiny_models, manifest):
    model_name = b"mnist_edge_cnn"  # what Keras names the model's ops after, a prefix on every op's name
    for name in ("tflite-fp32", "tflite-int8"):
        data = (tiny_models / manifest["artifacts"][name]["file"]).read_bytes()
        assert b"conv2d" in data and model_name not in data  # the layers keep their own names


def test_failed_verification_publishes_nothing(tiny_models, mnist, tmp_path, monkeypatch):
    import shutil

    from mnist_edge.convert import pipeline
    from mnist_edge.convert.formats import Format

    for name in ("model.keras", "training.json"):
        shutil.copy(tiny_models / name, tmp_path / name)
    (tmp_path / "manifest.json").write_text('{"artifacts": {}, "marker": "previous"}')

    def broken(model, **_):  # a converter that "succeeds" with a wrong model: the fp32 file of another net
        from mnist_edge.convert.tflite import keras_to_tflite_fp32
        from mnist_edge.train.models import build_model

        return keras_to_tflite_fp32(build_model("cnn"))

    formats = dict(FORMATS)
    formats["tflite-fp32"] = Format("tflite-fp32", "tflite", "fp32", "model_fp32.tflite", broken)
    monkeypatch.setattr(pipeline, "FORMATS", formats)
    with pytest.raises(ConversionError, match="tflite-fp32 failed verification"):
        pipeline.convert(tmp_path, mnist.subset(n_train=4000, n_test=300), not_digits=5)  # the data it trained on
    assert json.loads((tmp_path / "manifest.json").read_text())["marker"] == "previous"
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["manifest.json", "model.keras", "training.json"]


def test_converter_crash_names_the_artifact(tiny_models, mnist, tmp_path, monkeypatch):
    import shutil

    from mnist_edge.convert import pipeline
    from mnist_edge.convert.formats import Format

    for name in ("model.keras", "training.json"):
        shutil.copy(tiny_models / name, tmp_path / name)

    def crash(model, **_):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(pipeline, "FORMATS", {"onnx-fp32": Format("onnx-fp32", "onnx", "fp32", "m.onnx", crash)})
    with pytest.raises(ConversionError, match="onnx-fp32: conversion failed: RuntimeError: converter exploded"):
        pipeline.convert(tmp_path, mnist.subset(n_train=4000, n_test=100), not_digits=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "training.json"]


def test_triton_repository(tiny_models, manifest, tmp_path):
    from mnist_edge.convert.triton import export_triton

    names = export_triton(tiny_models, manifest, tmp_path / "repo")
    assert names == ["onnx-fp32", "onnx-int8"]
    for name in names:
        config = (tmp_path / "repo" / name / "config.pbtxt").read_text()
        assert f'name: "{name}"' in config and 'platform: "onnxruntime_onnx"' in config
        assert "dims: [ 28, 28, 1 ]" in config and "TYPE_FP32" in config
        assert 'name: "probabilities"' in config and "dims: [ 10 ]" in config
        assert 'name: "digit_score"' in config and "dims: [ 1 ]" in config
    # Re-exporting replaces the folders cleanly.
    assert export_triton(tiny_models, manifest, tmp_path / "repo") == names
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == names


def test_the_gate_fails_an_artifact_that_decides_is_digit_differently():
    from mnist_edge.convert.verify import check, compare

    rng = np.random.default_rng(0)
    reference = rng.dirichlet(np.ones(11), 400).astype(np.float32)
    labels = reference[:300, :10].argmax(axis=1)  # 300 "digits", then 100 "non-digits"
    # Same digits everywhere, but the not-a-digit column moved around: only the decision differs.
    drifted = reference.copy()
    drifted[:, 10] = rng.permutation(reference[:, 10])
    metrics = compare(drifted, labels, (reference, 0.9))
    assert metrics["agreement"] == 1.0 and metrics["is_digit_agreement"] < 0.99
    with pytest.raises(ConversionError, match="is-digit"):
        check(FORMATS["tflite-int8"], {**metrics, "max_abs_diff": 0.0}, metrics["accuracy"])


def test_data_other_than_the_training_data_is_refused_before_any_conversion(tiny_models, mnist, tmp_path):
    import shutil

    from mnist_edge.convert.pipeline import convert
    from mnist_edge.runtime.errors import DataError

    for name in ("model.keras", "training.json"):
        shutil.copy(tiny_models / name, tmp_path / name)
    # Trained on the first 4,000: the first 2,000 hold back other digits, so the thresholds would be chosen on
    # digits the model was fitted on.
    with pytest.raises(DataError, match="not the ones .* held back: convert with the data it was trained on"):
        convert(tmp_path, mnist.subset(n_train=2000, n_test=300), not_digits=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "training.json"]


def test_a_run_without_a_threshold_is_refused_before_any_conversion(tiny_models, mnist, tmp_path):
    import shutil

    from mnist_edge.convert.pipeline import convert
    from mnist_edge.runtime.errors import DataError

    shutil.copy(tiny_models / "model.keras", tmp_path / "model.keras")  # an older release's run: no not_a_digit report
    with pytest.raises(DataError, match="no not_a_digit threshold and held-back digits' sha256"):
        convert(tmp_path, mnist.subset(n_train=100, n_test=100), not_digits=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_model_below_the_floor_is_refused_before_any_conversion(tiny_models, mnist, tmp_path):
    import shutil

    from mnist_edge.convert.pipeline import convert

    for name in ("model.keras", "training.json"):
        shutil.copy(tiny_models / name, tmp_path / name)
    with pytest.raises(ConversionError, match=r"reads [\d.]+% of 300 MNIST test digits right, below the 99.90% floor "
                                              r"\(--min-accuracy\); train it longer"):
        convert(tmp_path, mnist.subset(n_train=4000, n_test=300), not_digits=5, min_accuracy=0.999)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "training.json"]


def test_a_model_at_chance_is_refused_whatever_the_floor(mnist):
    from mnist_edge.convert.floor import MIN_ACCURACY, check_accuracy

    commonest = np.bincount(mnist.y_test).max() / len(mnist.y_test)  # 11.35 %: the 1s
    with pytest.raises(ConversionError, match=r"reads 11.35% of 10,000 .* no better than always answering the "
                                              r"commonest digit \(11.35%\)"):
        check_accuracy(commonest, mnist.y_test, 0.0, Path("run"))
    with pytest.raises(ConversionError, match=r"below the 80.00% floor"):
        check_accuracy(MIN_ACCURACY - 0.0001, mnist.y_test, MIN_ACCURACY, Path("run"))
    check_accuracy(MIN_ACCURACY, mnist.y_test, MIN_ACCURACY, Path("run"))
    check_accuracy(commonest + 0.01, mnist.y_test, 0.0, Path("run"))  # a floor of 0 lets through anything above chance
