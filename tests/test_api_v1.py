"""The v1 API through Flask's test client: every input form, batches, compare, models, health and metrics."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from api_fixtures import b64, canvas_png, direct, ink_square, png
from PIL import Image

from mnist_edge.runtime.preprocess import preprocess

DRAWING = png(ink_square())


def check_answer(body: dict, expected: np.ndarray) -> None:
    """An answer agrees with the model's own probabilities and is internally consistent."""
    probs = np.array(body["probabilities"])
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1, abs=1e-4)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert body["digit"] == int(np.argmax(expected))
    assert body["confidence"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert isinstance(body["is_digit"], bool) and 0 <= body["digit_score"] <= 1
    assert set(body["timings_ms"]) == {"preprocess", "inference", "total"}
    assert all(v >= 0 for v in body["timings_ms"].values())
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"]


@pytest.mark.parametrize("form", ["multipart-file", "multipart-image", "raw-png", "octet-stream", "json-base64", "data-url"])
def test_predict_accepts_every_image_transport(app, client, form):
    default = app.extensions["mnist_edge"].registry.default
    requests = {
        "multipart-file": dict(data={"file": (io.BytesIO(DRAWING), "d.png")}, content_type="multipart/form-data"),
        "multipart-image": dict(data={"image": (io.BytesIO(DRAWING), "d.png")}, content_type="multipart/form-data"),
        "raw-png": dict(data=DRAWING, content_type="image/png"),
        "octet-stream": dict(data=DRAWING, content_type="application/octet-stream"),
        "json-base64": dict(json={"image": b64(DRAWING)}),
        "data-url": dict(json={"image": "data:image/png;base64," + b64(DRAWING)}),
    }
    response = client.post("/v1/predict", **requests[form])
    assert response.status_code == 200, response.json
    body = response.json
    assert body["backend"] == default
    check_answer(body, direct(app, default, DRAWING))


@pytest.mark.parametrize("form", ["canvas-png", "pixels"])
def test_predict_reads_labelled_digits(client, known_digits, form):
    # The oracle is MNIST's labels, which share no code with the API: a digit read from a transposed or mirrored
    # 28 x 28 image, or the wrong channel of a canvas, is misread far more often than this allows.
    pixels, labels = known_digits
    bodies = [client.post("/v1/predict", data=canvas_png(digit), content_type="image/png").json if form == "canvas-png"
              else client.post("/v1/predict", json={"pixels": digit.tolist()}).json for digit in pixels]
    read = np.array([body["digit"] for body in bodies])
    assert np.mean(read == labels) >= 0.97, f"{np.mean(read == labels):.1%} of {len(labels)} labelled digits read right"


def test_pixels_in_either_scale_give_the_same_answer(app, client):
    page = ink_square()
    as_255 = client.post("/v1/predict", json={"pixels": page.tolist()}).json
    as_unit = client.post("/v1/predict", json={"pixels": (page / 255.0).tolist()}).json
    check_answer(as_255, direct(app, as_255["backend"], page))
    assert as_unit["probabilities"] == pytest.approx(as_255["probabilities"], abs=1e-5)


def test_every_loaded_model_can_be_chosen(app, client, loaded_names):
    for name in loaded_names:
        by_query = client.post(f"/v1/predict?backend={name}", data=DRAWING, content_type="image/png").json
        by_field = client.post("/v1/predict", json={"image": b64(DRAWING), "backend": name}).json
        form = client.post("/v1/predict", data={"file": (io.BytesIO(DRAWING), "d.png"), "backend": name},
                           content_type="multipart/form-data").json
        for body in (by_query, by_field, form):
            assert body["backend"] == name
            check_answer(body, direct(app, name, DRAWING))


def test_return_image_is_what_the_model_saw(client):
    for response in (client.post("/v1/predict?return_image=true", data=DRAWING, content_type="image/png"),
                     client.post("/v1/predict", json={"image": b64(DRAWING), "return_image": True})):
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(response.json["image"]))))
        assert seen.shape == (28, 28)
        np.testing.assert_array_equal(seen, np.round(preprocess(DRAWING)[0, :, :, 0] * 255).astype(np.uint8))
    assert "image" not in client.post("/v1/predict", data=DRAWING, content_type="image/png").json


def test_batch_is_one_predict_call_with_the_single_answers(app, client, monkeypatch):
    registry = app.extensions["mnist_edge"].registry
    backend = registry.get().backend
    calls = []
    real = backend.predict
    monkeypatch.setattr(backend, "predict", lambda batch: calls.append(len(batch)) or real(batch))
    shifted = np.roll(ink_square(), 9, axis=1)
    instances = [{"image": b64(DRAWING)}, {"pixels": shifted.tolist()}, {"image": b64(canvas_png(255 - ink_square()[::2, ::2]))}]
    response = client.post("/v1/predict", json={"instances": instances, "return_image": True})
    assert response.status_code == 200, response.json
    assert calls == [3]
    body = response.json
    assert len(body["predictions"]) == 3 and body["backend"] == registry.default
    singles = [client.post("/v1/predict", json=item).json for item in instances]
    for answer, single in zip(body["predictions"], singles):
        assert answer["digit"] == single["digit"]
        assert answer["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)
        assert "image" in answer


def test_compare_runs_every_loaded_model(app, client, loaded_names):
    response = client.post("/v1/compare?return_image=1", data=DRAWING, content_type="image/png")
    assert response.status_code == 200, response.json
    body = response.json
    assert [r["backend"] for r in body["results"]] == loaded_names
    for result in body["results"]:
        expected = direct(app, result["backend"], DRAWING)
        assert result["digit"] == int(np.argmax(expected))
        np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5)
        assert result["inference_ms"] >= 0
    assert body["agree"] == (len({r["digit"] for r in body["results"]}) == 1)
    assert "image" in body


def test_models_lists_the_manifest_figures(app, client, shipped_models):
    manifest = json.loads((shipped_models / "manifest.json").read_text())
    body = client.get("/v1/models").json
    registry = app.extensions["mnist_edge"].registry
    assert body["default"] == registry.default
    assert [m["name"] for m in body["models"]] == list(registry.slots)
    assert "keras" not in registry.slots  # TensorFlow-only artifacts load only when named
    assert sum(m["default"] for m in body["models"]) == 1
    for model in body["models"]:
        entry = manifest["artifacts"][model["name"]]
        for key in ("format", "precision", "file", "size_bytes", "sha256", "accuracy"):
            assert model[key] == entry[key], key
        assert model["loaded"] and model["error"] is None
        assert model["inputs"][0]["shape"][1:] == [28, 28, 1] and model["outputs"][0]["shape"][-1] == 11
        if model["format"] == "onnx":
            assert "CPUExecutionProvider" in model["providers"]


def test_health_and_readiness(client, loaded_names):
    assert client.get("/healthz").json["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["ready"] is True
    assert [m["name"] for m in ready.json["models"]] == loaded_names


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    match = re.search(rf"^{re.escape(name + wanted)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_requests_errors_and_inference(app, client):
    backend = app.extensions["mnist_edge"].registry.default
    before = client.get("/metrics").text
    client.post("/v1/predict", data=DRAWING, content_type="image/png")
    client.post("/v1/predict", data=b"junk", content_type="image/png")
    response = client.get("/metrics")
    assert response.content_type.startswith("text/plain; version=0.0.4")
    after = response.text
    for status, delta in (("200", 1), ("400", 1)):
        key = dict(endpoint="/v1/predict", method="POST", status=status)
        assert _sample(after, "mnist_edge_requests_total", **key) == _sample(before, "mnist_edge_requests_total", **key) + delta
    assert _sample(after, "mnist_edge_errors_total", code="bad_image") >= 1
    count = _sample(after, "mnist_edge_inference_duration_seconds_count", backend=backend)
    assert count == _sample(before, "mnist_edge_inference_duration_seconds_count", backend=backend) + 1
    buckets = [float(v) for v in re.findall(
        rf'^mnist_edge_inference_duration_seconds_bucket{{backend="{backend}",le="[^"]+"}} (\S+)$', after, re.M)]
    assert buckets == sorted(buckets) and buckets[-1] == count
    assert _sample(after, "mnist_edge_requests_in_flight") == 1  # the scrape itself
    assert _sample(after, "mnist_edge_model_loaded", model=backend) == 1


@pytest.mark.parametrize(("path", "kwargs", "kind", "unknown", "valid"), [
    ("/v1/predict?model=onnx-int8", dict(data=DRAWING, content_type="image/png"), "query parameter", ["model"],
     ["backend", "return_image"]),
    ("/v1/predict?image=true&x=1", dict(data=DRAWING, content_type="image/png"), "query parameter", ["image", "x"],
     ["backend", "return_image"]),
    ("/v1/compare?backend=onnx-int8", dict(data=DRAWING, content_type="image/png"), "query parameter", ["backend"],
     ["return_image"]),
    ("/v1/predict", dict(json={"image": b64(DRAWING), "model": "onnx-int8"}), "JSON key", ["model"],
     ["backend", "image", "instances", "pixels", "return_image"]),
    ("/v1/predict", dict(json={"instances": [{"image": b64(DRAWING), "backend": "x"}]}), "JSON key", ["backend"],
     ["image", "pixels"]),
    ("/v1/compare", dict(json={"image": b64(DRAWING), "backend": "onnx-int8"}), "JSON key", ["backend"],
     ["image", "instances", "pixels", "return_image"]),
    ("/v1/predict", dict(data={"file": (io.BytesIO(DRAWING), "d.png"), "modle": "x"}, content_type="multipart/form-data"),
     "form field", ["modle"], ["backend", "return_image"]),
])
def test_unknown_parameters_are_400s_naming_the_valid_ones(client, path, kwargs, kind, unknown, valid):
    response = client.post(path, **kwargs)
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "unknown_parameter"
    details = {key: value for key, value in error["details"].items() if key != "instance"}  # set inside `instances`
    assert details == {"kind": kind, "unknown": unknown, "valid": valid}
    assert f"unknown {kind}" in error["message"] and all(f"`{name}`" in error["message"] for name in unknown)
    assert error["message"].endswith("valid: " + ", ".join(valid))


def test_the_issue_10_example_reads_as_promised(client):
    response = client.post("/v1/predict?model=onnx-int8", data=DRAWING, content_type="image/png")
    assert response.json["error"]["message"] == "unknown query parameter `model`; valid: backend, return_image"


def test_models_takes_no_parameters(client):
    response = client.get("/v1/models?verbose=1")
    assert response.status_code == 400 and response.json["error"]["details"]["unknown"] == ["verbose"]


def test_index_links_to_every_entry_point(app, client):
    body = client.get("/").json
    assert body["name"] == "mnist-edge" and set(body["links"]) >= {"openapi", "docs", "health", "models"}
    for link in body["links"].values():
        target = client.get(link)
        assert target.status_code == 200, link
