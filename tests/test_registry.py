"""The model registry behind the API: damaged artifacts fail alone and say why; names are checked; keras is opt-in."""

from __future__ import annotations

import io
import json
import shutil
import sys

import pytest
from api_fixtures import damaged_copy, ink_square, png

from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.errors import ConfigError, UnknownNameError
from mnist_edge.runtime.registry import ModelRegistry

DRAWING = png(ink_square())
BROKEN = {"missing": "tflite-fp16", "corrupt": "onnx-fp32", "tampered": "tflite-dynamic"}


@pytest.fixture(scope="module")
def damaged(shipped_models, tmp_path_factory):
    """The API on a copy of the models with three artifacts broken three ways."""
    models = damaged_copy(shipped_models, tmp_path_factory.mktemp("models") / "models", **BROKEN)
    return create_app(ServeConfig(models_dir=models)).test_client()


def test_broken_artifacts_are_reported_with_their_reason(damaged):
    models = {m["name"]: m for m in damaged.get("/v1/models").json["models"]}
    reasons = {"missing": "missing", "corrupt": "cannot load", "tampered": "sha256"}
    for how, name in BROKEN.items():
        assert models[name]["loaded"] is False
        assert reasons[how] in models[name]["error"], (name, models[name]["error"])
    serving = [name for name, m in models.items() if m["loaded"]]
    assert serving and not set(serving) & set(BROKEN.values())
    for name in serving:
        assert damaged.post(f"/v1/predict?backend={name}", data=DRAWING, content_type="image/png").status_code == 200


def test_broken_models_answer_503_and_the_rest_keep_serving(damaged):
    for name in BROKEN.values():
        response = damaged.post(f"/v1/predict?backend={name}", data=DRAWING, content_type="image/png")
        assert response.status_code == 503 and response.json["error"]["code"] == "model_unavailable"
        ready = damaged.get(f"/v2/models/{name}/ready")
        assert ready.status_code == 400 and ready.json["ready"] is False
        assert damaged.post(f"/v2/models/{name}/infer", json={"inputs": [
            {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0] * 784}]}).status_code == 503
    assert damaged.get("/readyz").status_code == 200  # the default still serves
    assert damaged.get("/v2/health/ready").status_code == 400  # the protocol's ready means every model
    compare = damaged.post("/v1/compare", data=DRAWING, content_type="image/png").json
    assert not {r["backend"] for r in compare["results"]} & set(BROKEN.values())
    metrics = damaged.get("/metrics").text
    assert f'mnist_edge_model_loaded{{model="{BROKEN["missing"]}"}} 0' in metrics


def test_a_failed_default_falls_back_to_a_loaded_model(shipped_models, tmp_path):
    models = damaged_copy(shipped_models, tmp_path / "models", missing="tflite-int8", corrupt="onnx-fp32",
                          tampered="tflite-dynamic")
    client = create_app(ServeConfig(models_dir=models, default_model="tflite-int8")).test_client()
    ready = client.get("/readyz").json
    assert ready["ready"] and ready["default"] not in ("tflite-int8", "onnx-fp32", "tflite-dynamic")
    assert client.post("/v1/predict", data=DRAWING, content_type="image/png").json["backend"] == ready["default"]


def test_nothing_loaded_is_not_ready(shipped_models, tmp_path):
    models = damaged_copy(shipped_models, tmp_path / "models", missing="onnx-int8", corrupt="onnx-fp32",
                          tampered="tflite-int8")
    client = create_app(ServeConfig(models_dir=models, models=["onnx-int8", "onnx-fp32", "tflite-int8"])).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/compare", data=DRAWING, content_type="image/png").status_code == 503


def test_unknown_names_list_the_valid_ones(shipped_models):
    with pytest.raises(UnknownNameError) as info:
        create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8", "tflite-int3"]))
    assert info.value.status == 404 and "onnx-int8" in info.value.message and "tflite-int3" in info.value.message
    with pytest.raises(UnknownNameError):
        create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], default_model="tflite-int3"))
    with pytest.raises(ConfigError, match="tflite-int8 is not loaded"):  # a real model, left out of --model
        create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], default_model="tflite-int8"))
    registry = ModelRegistry.from_manifest(shipped_models, names=["onnx-int8"])
    with pytest.raises(UnknownNameError) as info:
        registry.get("tflite-int8")
    assert info.value.details["valid"] == ["onnx-int8"]


def test_only_the_named_models_load(shipped_models):
    client = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8", "tflite-fp32"])).test_client()
    assert [m["name"] for m in client.get("/v1/models").json["models"]] == ["onnx-int8", "tflite-fp32"]


def test_keras_loads_only_when_asked(shipped_models):
    default = ModelRegistry.from_manifest(shipped_models)
    assert "keras" not in default.slots
    pytest.importorskip("keras", reason="the keras backend needs TensorFlow")
    client = create_app(ServeConfig(models_dir=shipped_models, models=["keras", "onnx-fp32"])).test_client()
    models = {m["name"]: m for m in client.get("/v1/models").json["models"]}
    assert models["keras"]["loaded"], models["keras"]["error"]
    keras = client.post("/v1/predict?backend=keras", data=DRAWING, content_type="image/png").json
    onnx = client.post("/v1/predict?backend=onnx-fp32", data={"file": (io.BytesIO(DRAWING), "d.png")},
                       content_type="multipart/form-data").json
    assert keras["digit"] == onnx["digit"]  # the converter verified fp32 ONNX against Keras to 1e-3
    assert "tensorflow" in sys.modules


@pytest.mark.parametrize(("file", "reason"), [
    ("../outside.onnx", "inside the models folder"), ("/etc/hostname", "inside the models folder"),
    ("escape.onnx", "leads outside"), (None, "inside the models folder"),
])
def test_models_load_only_from_the_configured_folder(shipped_models, tmp_path, file, reason):
    models = tmp_path / "models"
    shutil.copytree(shipped_models, models)
    (tmp_path / "outside.onnx").write_bytes((models / "model_int8.onnx").read_bytes())
    (models / "escape.onnx").symlink_to(tmp_path / "outside.onnx")
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["artifacts"]["onnx-int8"]["file"] = file
    (models / "manifest.json").write_text(json.dumps(manifest))
    client = create_app(ServeConfig(models_dir=models)).test_client()
    described = {m["name"]: m for m in client.get("/v1/models").json["models"]}
    assert described["onnx-int8"]["loaded"] is False
    assert reason in described["onnx-int8"]["error"]
    assert described["onnx-fp32"]["loaded"] is True


def test_an_entry_without_sha256_is_refused_not_loaded_unchecked(shipped_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(shipped_models, models)
    manifest = json.loads((models / "manifest.json").read_text())
    del manifest["artifacts"]["onnx-int8"]["sha256"]
    (models / "manifest.json").write_text(json.dumps(manifest))
    client = create_app(ServeConfig(models_dir=models)).test_client()
    described = {m["name"]: m for m in client.get("/v1/models").json["models"]}
    assert described["onnx-int8"]["loaded"] is False and "no sha256" in described["onnx-int8"]["error"]
    assert client.post("/v1/predict?backend=onnx-int8", data=DRAWING, content_type="image/png").status_code == 503


@pytest.mark.parametrize("threshold", [None, 0, 1.5, "0.5", True])
def test_a_model_without_a_usable_threshold_cannot_answer(shipped_models, tmp_path, threshold):
    models = tmp_path / "models"
    shutil.copytree(shipped_models, models)
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["artifacts"]["onnx-int8"]["threshold"] = threshold
    (models / "manifest.json").write_text(json.dumps(manifest))
    registry = ModelRegistry.from_manifest(models)
    assert "no not-a-digit threshold between 0 and 1" in registry.slots["onnx-int8"].error
    assert registry.get("tflite-int8").threshold == manifest["artifacts"]["tflite-int8"]["threshold"]  # the rest serve
    client = create_app(ServeConfig(models_dir=models)).test_client()
    described = {m["name"]: m for m in client.get("/v1/models").json["models"]}
    assert described["onnx-int8"]["digit_threshold"] is None and described["onnx-int8"]["loaded"] is False


def test_a_model_without_the_not_a_digit_class_is_refused(shipped_models, tmp_path):
    """A ten-class model (an older release's) would answer; but every answer needs the eleventh class, so it is not loaded."""
    import keras

    from mnist_edge.convert.tflite import keras_to_tflite_fp32
    from mnist_edge.runtime.manifest import sha256_file

    inputs = keras.Input((28, 28, 1))
    old = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    models = tmp_path / "models"
    shutil.copytree(shipped_models, models)
    (models / "model_fp32.tflite").write_bytes(keras_to_tflite_fp32(old))
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["artifacts"]["tflite-fp32"]["sha256"] = sha256_file(models / "model_fp32.tflite")
    (models / "manifest.json").write_text(json.dumps(manifest))
    slot = ModelRegistry.from_manifest(models, names=["tflite-fp32"]).slots["tflite-fp32"]
    assert not slot.loaded and "output has shape (1, 10)" in slot.error
