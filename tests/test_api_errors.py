"""Every v1 error path: the right status, a stable code, one JSON shape, never a 500 for bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from api_fixtures import GARBAGE, b64, ink_square, png

from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig

DRAWING = png(ink_square())


def error_of(response, status: int) -> dict:
    """The {"error": {code, message, details?}} body of a response that must have this status."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json
    error = response.json["error"]
    assert set(error) <= {"code", "message", "details"} and error["message"]
    return error


@pytest.mark.parametrize(("kwargs", "code"), [
    (dict(data=b"{not json", content_type="application/json"), "invalid_json"),
    (dict(data=b"", content_type="application/json"), "invalid_json"),
    (dict(data=b'{"image": "\xff"}', content_type="application/json"), "invalid_json"),
    (dict(data=b"[" * 100_000, content_type="application/json"), "invalid_json"),
    (dict(data=b'{"pixels": [[1e309]]}', content_type="application/json"), "invalid_json"),
    (dict(json=[1, 2]), "malformed_request"),
    (dict(json="an image"), "malformed_request"),
    (dict(json={}), "malformed_request"),
    (dict(json={"image": b64(DRAWING), "pixels": [[0]]}), "malformed_request"),
    (dict(json={"instances": [{"image": b64(DRAWING)}], "pixels": [[0]]}), "malformed_request"),
    (dict(json={"picture": "x"}), "unknown_parameter"),
    (dict(json={"image": 42}), "malformed_request"),
    (dict(json={"image": "@@not base64@@"}), "bad_image"),
    (dict(json={"image": "data:image/png," + b64(DRAWING)}), "malformed_request"),
    (dict(json={"image": b64(b"plain text, no image")}), "bad_image"),
    (dict(json={"image": b64(png(np.full((50, 50), 255, np.uint8)))}), "blank_image"),
    (dict(json={"pixels": [[0, 1], [2]]}), "malformed_request"),
    (dict(json={"pixels": [1, 2, 3]}), "bad_image"),
    (dict(json={"pixels": [[["a"]]]}), "malformed_request"),
    (dict(json={"pixels": [[0, 300], [0, 0]]}), "bad_image"),
    (dict(json={"pixels": [[-1, 0], [0, 0]]}), "bad_image"),
    (dict(json={"pixels": np.zeros((28, 28, 2)).tolist()}), "bad_image"),
    (dict(json={"pixels": np.zeros((28, 28)).tolist()}), "blank_image"),
    (dict(json={"image": b64(DRAWING), "backend": 3}), "malformed_request"),
    (dict(json={"instances": []}), "malformed_request"),
    (dict(json={"instances": "x"}), "malformed_request"),
    (dict(data=b"", content_type="image/png"), "bad_image"),
    (dict(data={"upload": (io.BytesIO(DRAWING), "d.png")}, content_type="multipart/form-data"), "unknown_parameter"),
    (dict(data={"backend": "onnx-int8"}, content_type="multipart/form-data"), "malformed_request"),
])
def test_bad_input_is_a_400_with_a_stable_code(client, kwargs, code):
    assert error_of(client.post("/v1/predict", **kwargs), 400)["code"] == code


def test_invalid_json_is_told_apart_from_json_that_is_not_an_object(client):
    invalid = error_of(client.post("/v1/predict", data=b"[" * 100_000, content_type="application/json"), 400)
    assert invalid["code"] == "invalid_json" and "not valid JSON" in invalid["message"]
    not_object = error_of(client.post("/v1/predict", json=[1, 2]), 400)
    assert not_object["code"] == "malformed_request" and "not an object" in not_object["message"]


def test_deep_nesting_is_a_400_on_v2_too(client):
    response = client.post("/v2/models/onnx-int8/infer", data=b"[" * 100_000, content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.json["error"]


def test_a_bad_instance_is_named_by_its_index(client):
    error = error_of(client.post("/v1/predict", json={"instances": [{"image": b64(DRAWING)}, {"pixels": [1]}]}), 400)
    assert error["details"]["instance"] == 1 and error["message"].startswith("instances[1]")


def test_compare_takes_one_image(client):
    assert error_of(client.post("/v1/compare", json={"instances": [{"image": b64(DRAWING)}]}), 400)["code"] == "malformed_request"


def test_unknown_model_is_a_404_listing_the_valid_ones(client, loaded_names):
    error = error_of(client.post("/v1/predict?backend=tflite-int4", data=DRAWING, content_type="image/png"), 404)
    assert error["code"] == "unknown_name"
    assert error["details"]["valid"] == sorted(loaded_names)
    assert "tflite-int4" in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_unsupported_content_type_is_a_415(client, content_type):
    kwargs = {"data": b"1234"} | ({"content_type": content_type} if content_type else {})
    assert error_of(client.post("/v1/predict", **kwargs), 415)["code"] == "unsupported_media_type"


def test_limits_are_413s(shipped_models):
    small = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], max_body_bytes=20_000,
                                   max_batch=3, max_image_pixels=100 * 100)).test_client()
    big_body = png(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    assert len(big_body) > 20_000
    assert error_of(small.post("/v1/predict", data=big_body, content_type="image/png"), 413)["code"] == "too_large"
    assert error_of(small.post("/v1/predict", data={"file": (io.BytesIO(big_body), "b.png")},
                               content_type="multipart/form-data"), 413)["code"] == "too_large"
    too_many = {"instances": [{"image": b64(DRAWING)}] * 4}
    assert error_of(small.post("/v1/predict", json=too_many), 413)["details"]["limit"] == 3
    wide = png(np.pad(ink_square(), ((0, 0), (0, 200)), constant_values=255))  # 64 x 264 > 100 x 100 pixels, few bytes
    assert len(wide) < 20_000
    assert error_of(small.post("/v1/predict", data=wide, content_type="image/png"), 413)["code"] == "too_large"
    assert error_of(small.post("/v1/predict", json={"pixels": np.zeros((101, 101)).tolist()}), 413)["code"] == "too_large"
    assert small.post("/v1/predict", json={"instances": [{"image": b64(DRAWING)}] * 3}).status_code == 200


def test_routing_errors_share_the_shape(client):
    assert error_of(client.get("/v1/nowhere"), 404)["code"] == "not_found"
    response = client.get("/v1/predict")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_token_guards_everything_but_the_probes(shipped_models):
    guarded = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], token="s3cret")).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        for method, path in (("POST", "/v1/predict"), ("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/v2")):
            response = guarded.open(path, method=method, headers=headers, data=DRAWING, content_type="image/png")
            assert response.status_code == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    good = {"Authorization": "Bearer s3cret"}
    assert guarded.post("/v1/predict", data=DRAWING, content_type="image/png", headers=good).status_code == 200
    assert guarded.get("/v1/models", headers=good).status_code == 200
    for probe in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"):
        assert guarded.get(probe).status_code == 200


def test_an_unexpected_failure_is_a_json_500_without_internals(app, client, monkeypatch, caplog):
    backend = app.extensions["mnist_edge"].registry.get().backend

    def explode(batch):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(backend, "predict", explode)
    response = client.post("/v1/predict", data=DRAWING, content_type="image/png")
    error = error_of(response, 500)
    assert error["code"] == "internal_error" and "secret" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # the log has it
    monkeypatch.undo()
    assert client.post("/v1/predict", data=DRAWING, content_type="image/png").status_code == 200


@pytest.mark.parametrize(("method", "path", "kwargs"), GARBAGE)
def test_garbage_never_yields_a_500(client, method, path, kwargs):
    response = client.open(path, method=method, **kwargs)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert "error" in response.json
