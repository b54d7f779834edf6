"""The Open Inference Protocol (KServe v2) subset: health, metadata, infer, and its {"error": str} shape."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge import __version__
from mnist_edge.runtime.preprocess import scale_pixels

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 256, (3, 28, 28), dtype=np.uint8)  # any values: the oracle is the model itself


def model_answers(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The oracle, worked out here rather than by answers.split: the first ten of the model's eleven outputs scaled to
    sum to 1 (all ten alike when an int8 model gives them nothing), and the digit score, one less the not-a-digit
    output."""
    outputs = outputs.astype(np.float64)
    digits, total = outputs[:, :10], outputs[:, :10].sum(axis=1, keepdims=True)
    return np.divide(digits, total, out=np.full_like(digits, 0.1), where=total > 0), np.clip(1 - outputs[:, 10], 0, 1)


def v2_error(response, status: int) -> str:
    """The protocol's error body: {"error": "<message>"}."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert set(response.json) == {"error"} and isinstance(response.json["error"], str) and response.json["error"]
    return response.json["error"]


def infer_body(data, shape, datatype="FP32", **extra) -> dict:
    return {"inputs": [{"name": "image", "shape": shape, "datatype": datatype, "data": data}], **extra}


def test_server_health_and_metadata(client):
    assert client.get("/v2/health/live").json == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json == {"ready": True}
    assert client.get("/v2").json == {"name": "mnist-edge", "version": __version__, "extensions": ["binary_tensor_data"]}


def test_model_metadata_and_readiness(app, client, loaded_names):
    registry = app.extensions["mnist_edge"].registry
    for name in loaded_names:
        meta = client.get(f"/v2/models/{name}").json
        assert meta["name"] == name
        assert meta["versions"] == [registry.slots[name].entry["sha256"][:12]]
        assert meta["platform"] == {"onnx": "onnxruntime_onnx", "tflite": "litert_tflite"}[registry.slots[name].entry["format"]]
        assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]}]
        assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                                   {"name": "digit_score", "datatype": "FP32", "shape": [-1, 1]}]
        version = meta["versions"][0]
        assert client.get(f"/v2/models/{name}/versions/{version}").json == meta
        for path in (f"/v2/models/{name}/ready", f"/v2/models/{name}/versions/{version}/ready"):
            response = client.get(path)
            assert response.status_code == 200 and response.json == {"name": name, "ready": True}


@pytest.mark.parametrize("nested", [False, True])
def test_infer_fp32_runs_the_input_as_is(app, client, loaded_names, nested):
    batch = scale_pixels(PIXELS)
    data = batch.tolist() if nested else batch.ravel().tolist()
    for name in loaded_names:
        response = client.post(f"/v2/models/{name}/infer", json=infer_body(data, [3, 28, 28, 1], id="req-1"))
        assert response.status_code == 200, response.json
        body = response.json
        assert list(body) == ["model_name", "model_version", "id", "outputs"]
        assert body["model_name"] == name and body["id"] == "req-1"
        output, score = body["outputs"]
        assert output["name"] == "probabilities" and output["datatype"] == "FP32" and output["shape"] == [3, 10]
        assert score["name"] == "digit_score" and score["datatype"] == "FP32" and score["shape"] == [3, 1]
        expected, expected_score = model_answers(app.extensions["mnist_edge"].registry.get(name).backend.predict(batch))
        np.testing.assert_allclose(np.array(output["data"]).reshape(3, 10), expected, atol=1e-6)
        np.testing.assert_allclose(score["data"], expected_score, atol=1e-6)


def test_infer_uint8_pixels_are_scaled(app, client):
    name = app.extensions["mnist_edge"].registry.default
    body = infer_body(PIXELS.ravel().tolist(), [3, 28, 28], "UINT8", outputs=[{"name": "probabilities"}])
    response = client.post(f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.json
    assert "id" not in response.json
    expected = model_answers(app.extensions["mnist_edge"].registry.get(name).backend.predict(scale_pixels(PIXELS)))[0]
    [output] = response.json["outputs"]  # only the output asked for
    np.testing.assert_allclose(np.array(output["data"]).reshape(3, 10), expected, atol=1e-6)


def test_infer_without_a_json_content_type_still_parses(app, client):
    name = app.extensions["mnist_edge"].registry.default
    import json

    raw = json.dumps(infer_body(PIXELS[:1].ravel().tolist(), [1, 28, 28], "UINT8"))
    assert client.post(f"/v2/models/{name}/infer", data=raw, content_type="text/plain").status_code == 200


GOOD = scale_pixels(PIXELS[:1]).ravel().tolist()


@pytest.mark.parametrize(("body", "said"), [
    ({"inputs": []},
     'exactly one input tensor (image), got 0'),
    ({"input": []},
     'a JSON object with an `inputs` list'),
    ([1, 2],
     'header must be an object with an `inputs` list'),
    ({"inputs": [infer_body(GOOD, [1, 28, 28, 1])["inputs"][0]] * 2},
     'exactly one input tensor (image), got 2'),
    (infer_body(GOOD, [1, 28, 28, 1], "FP64"),
     "datatype 'FP64' is not taken"),
    (infer_body(GOOD, [1, 784]),
     'shape [1, 784] is not taken'),
    (infer_body(GOOD, [-1, 28, 28, 1]),
     'shape [-1, 28, 28, 1] is not taken'),
    (infer_body(GOOD, [1, 28, 28, "1"]),
     "shape [1, 28, 28, '1'] is not taken"),
    (infer_body(GOOD[:-1], [1, 28, 28, 1]),
     'holds 783 values; shape [1, 28, 28, 1] needs 784'),
    (infer_body([None] * 784, [1, 28, 28, 1]),
     'contains NaN, infinity or null'),
    (infer_body("abc", [1, 28, 28, 1]),
     'must be a flat or nested list of numbers'),
    (infer_body([[1, 2], [3]], [1, 28, 28, 1]),
     'must be a flat or nested list of numbers'),
    (infer_body([256] * 784, [1, 28, 28], "UINT8"),
     'UINT8 `data` must be whole numbers 0-255'),
    (infer_body([0.5] * 784, [1, 28, 28], "UINT8"),
     'UINT8 `data` must be whole numbers 0-255'),
    (infer_body(GOOD, [1, 28, 28, 1], outputs=[{"name": "logits"}]),
     "unknown output {'name': 'logits'}"),
    (infer_body(GOOD, [1, 28, 28, 1], id=5),
     '`id` must be a str'),
    (infer_body(GOOD, [1, 28, 28, 1], outputs=["probabilities"]),
     "unknown output 'probabilities'"),
    (infer_body(GOOD, [1, 28, 28, 1], outputs=[{"name": "probabilities"}] * 3),
     '3 outputs requested; this model has 2'),
    (infer_body(GOOD, [1, 28, 28, 1], outputs=[{"name": "probabilities", "parameters": {"classification": 3}}]),
     "output parameter(s) ['classification'] are not supported"),
    (infer_body(GOOD, [1, 28, 28, 1], outputs=[{"name": "probabilities", "parameters": {"binary_data": "yes"}}]),
     "must be true or false, got 'yes'"),
    (infer_body(GOOD, [1, 28, 28, 1], parameters={"binary_data_output": 1}),
     'must be true or false, got 1'),
    ({"inputs": [{**infer_body(GOOD, [1, 28, 28, 1])["inputs"][0], "parameters": {"shared_memory_region": "r"}}]},
     "input parameter(s) ['shared_memory_region'] are not supported"),
    ({"inputs": [{"shape": [1, 28, 28, 1], "datatype": "FP32", "data": GOOD}]},
     'the input tensor needs a `name`'),
])
def test_bad_infer_requests_are_400s_that_say_what_is_wrong(client, body, said):
    assert said in v2_error(client.post("/v2/models/onnx-int8/infer", json=body), 400)


def test_invalid_json_is_a_400(client):
    assert "not valid JSON" in v2_error(client.post("/v2/models/onnx-int8/infer", data=b"{oops",
                                                    content_type="application/json"), 400)


def test_batch_over_the_limit_is_a_413(client, app):
    limit = app.extensions["mnist_edge"].config.max_batch
    n = limit + 1
    v2_error(client.post("/v2/models/onnx-int8/infer", json=infer_body([0] * (784 * n), [n, 28, 28], "UINT8")), 413)


def test_unknown_models_and_versions_are_404s(client, loaded_names):
    message = v2_error(client.get("/v2/models/resnet50"), 404)
    assert all(name in message for name in loaded_names)
    v2_error(client.get("/v2/models/resnet50/ready"), 404)
    v2_error(client.post("/v2/models/resnet50/infer", json=infer_body(GOOD, [1, 28, 28, 1])), 404)
    v2_error(client.get("/v2/models/onnx-int8/versions/999"), 404)
    v2_error(client.post("/v2/models/onnx-int8/versions/999/infer", json=infer_body(GOOD, [1, 28, 28, 1])), 404)
    v2_error(client.get("/v2/nothing"), 404)
    v2_error(client.get("/v2/models/onnx-int8/infer"), 405)
