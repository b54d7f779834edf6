"""The OpenAPI document is valid, covers every route, and real responses (success and error) match its schemas."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import numpy as np
import pytest
from api_fixtures import b64, damaged_copy, ink_square, png
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.api.openapi import build_document

DRAWING = png(ink_square())
BROKEN = {"missing": "tflite-fp16", "corrupt": "onnx-fp32", "tampered": "tflite-int8"}
UINT8 = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0] * 784}]}
RAW = {"data": DRAWING, "content_type": "image/png"}
_HEADER = json.dumps({"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8",
                                  "parameters": {"binary_data_size": 784}}], "parameters": {"binary_data_output": True}})
CORRECTION = {"image": b64(DRAWING), "label": 3, "answer": {"digit": 5, "is_digit": True, "backend": "onnx-int8"}}
NOISE = png(np.random.default_rng(0).integers(0, 256, (600, 600), dtype=np.uint8))  # a PNG over the 256 KB cap
BINARY = {"data": _HEADER.encode() + bytes(784), "headers": {"Inference-Header-Content-Length": str(len(_HEADER))}}
TWO_BARS = {"data": png(np.hstack([ink_square(), ink_square()])), "content_type": "image/png"}  # "11": two characters
BLANK = {"data": png(np.full((40, 90), 255, dtype=np.uint8)), "content_type": "image/png"}


@pytest.fixture(scope="module")
def apps(app, shipped_models, tmp_path_factory) -> dict:
    """The shipped app, one wanting a token, one with broken models, one with nothing loaded, and the corrections
    store off, full (at its cap) and unwritable (its folder under a file)."""
    broken = damaged_copy(shipped_models, tmp_path_factory.mktemp("openapi") / "models", **BROKEN)
    registry = app.extensions["mnist_edge"].registry
    store = tmp_path_factory.mktemp("feedback")
    (store / "a-file").write_text("not a folder")
    return {
        "off": create_app(ServeConfig(models_dir=shipped_models, feedback=False), registry=registry),
        "full": create_app(ServeConfig(models_dir=shipped_models, feedback_db=store / "full.sqlite3",
                                       feedback_max_bytes=1024), registry=registry),
        "unwritable": create_app(ServeConfig(models_dir=shipped_models, feedback_db=store / "a-file" / "f.sqlite3"),
                                 registry=registry),
        "ok": app,
        "token": create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], token="t")),
        "damaged": create_app(ServeConfig(models_dir=broken)),
        "dead": create_app(ServeConfig(models_dir=broken, models=list(BROKEN.values()))),
        "one_digit": create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], max_digits=1)),
    }


# (app, method, documented path, real path, client kwargs, expected status)
CASES = [
    ("ok", "POST", "/v1/predict", "/v1/predict", RAW, 200),
    ("ok", "POST", "/v1/predict", "/v1/predict?return_image=true", {"json": {"pixels": ink_square().tolist()}}, 200),
    ("ok", "POST", "/v1/predict", "/v1/predict", {"json": {"instances": [{"image": b64(DRAWING)}] * 2, "return_image": True}}, 200),
    ("ok", "POST", "/v1/predict", "/v1/predict", {"json": {"image": "%%"}}, 400),
    ("ok", "POST", "/v1/predict", "/v1/predict?model=onnx-int8", RAW, 400),
    ("ok", "POST", "/v1/predict", "/v1/predict", {"data": b"[" * 5000, "content_type": "application/json"}, 400),
    ("ok", "POST", "/v1/predict", "/v1/predict?backend=nope", RAW, 404),
    ("ok", "POST", "/v1/predict", "/v1/predict", {"json": {"instances": [{"image": "x"}] * 65}}, 413),
    ("ok", "POST", "/v1/predict", "/v1/predict", {"data": b"x", "content_type": "text/csv"}, 415),
    ("token", "POST", "/v1/predict", "/v1/predict", RAW, 401),
    ("damaged", "POST", "/v1/predict", "/v1/predict?backend=onnx-fp32", RAW, 503),
    ("ok", "POST", "/v1/read", "/v1/read", TWO_BARS, 200),
    ("ok", "POST", "/v1/read", "/v1/read?return_image=true", {"json": {"pixels": ink_square().tolist()}}, 200),
    ("ok", "POST", "/v1/read", "/v1/read", BLANK, 400),
    ("ok", "POST", "/v1/read", "/v1/read", {"json": {"instances": [{"image": b64(DRAWING)}]}}, 400),
    ("ok", "POST", "/v1/read", "/v1/read?backend=nope", RAW, 404),
    ("one_digit", "POST", "/v1/read", "/v1/read", TWO_BARS, 413),
    ("ok", "POST", "/v1/read", "/v1/read", {"data": b"x", "content_type": "text/csv"}, 415),
    ("token", "POST", "/v1/read", "/v1/read", RAW, 401),
    ("damaged", "POST", "/v1/read", "/v1/read?backend=onnx-fp32", RAW, 503),
    ("ok", "POST", "/v1/compare", "/v1/compare?return_image=1", RAW, 200),
    ("ok", "POST", "/v1/compare", "/v1/compare", {"json": {"pixels": [[0]]}}, 400),
    ("ok", "POST", "/v1/compare", "/v1/compare", {"data": b"x", "content_type": "text/csv"}, 415),
    ("dead", "POST", "/v1/compare", "/v1/compare", RAW, 503),
    ("ok", "POST", "/v1/feedback", "/v1/feedback", {"json": CORRECTION}, 201),
    ("ok", "POST", "/v1/feedback", "/v1/feedback", {"json": {**CORRECTION, "label": 10}}, 400),
    ("ok", "POST", "/v1/feedback", "/v1/feedback", {"json": {**CORRECTION, "image": b64(NOISE)}}, 413),
    ("ok", "POST", "/v1/feedback", "/v1/feedback", {"data": b"x", "content_type": "text/plain"}, 415),
    ("token", "POST", "/v1/feedback", "/v1/feedback", {"json": CORRECTION}, 401),
    ("off", "POST", "/v1/feedback", "/v1/feedback", {"json": CORRECTION}, 404),
    ("unwritable", "POST", "/v1/feedback", "/v1/feedback", {"json": CORRECTION}, 503),
    ("full", "POST", "/v1/feedback", "/v1/feedback", {"json": CORRECTION}, 507),
    ("ok", "GET", "/v1/feedback", "/v1/feedback", {}, 200),
    ("ok", "GET", "/v1/feedback", "/v1/feedback?label=1", {}, 400),
    ("token", "GET", "/v1/feedback", "/v1/feedback", {}, 401),
    ("off", "GET", "/v1/feedback", "/v1/feedback", {}, 404),
    ("unwritable", "GET", "/v1/feedback", "/v1/feedback", {}, 503),
    ("ok", "GET", "/v1/models", "/v1/models", {}, 200),
    ("damaged", "GET", "/v1/models", "/v1/models", {}, 200),
    ("token", "GET", "/v1/models", "/v1/models", {}, 401),
    ("ok", "GET", "/v1/models", "/v1/models?verbose=1", {}, 400),
    ("ok", "GET", "/", "/", {}, 200),
    ("token", "GET", "/", "/", {}, 401),
    ("ok", "GET", "/docs", "/docs", {}, 200),
    ("token", "GET", "/docs", "/docs", {}, 401),
    ("ok", "GET", "/docs/{asset}", "/docs/swagger-ui.css", {}, 200),
    ("ok", "GET", "/docs/{asset}", "/docs/swagger-ui-bundle.js", {}, 200),
    ("ok", "GET", "/docs/{asset}", "/docs/favicon-32x32.png", {}, 200),
    ("ok", "GET", "/docs/{asset}", "/docs/LICENSE", {}, 404),
    ("token", "GET", "/docs/{asset}", "/docs/swagger-ui.css", {}, 401),
    ("ok", "GET", "/healthz", "/healthz", {}, 200),
    ("ok", "GET", "/readyz", "/readyz", {}, 200),
    ("dead", "GET", "/readyz", "/readyz", {}, 503),
    ("ok", "GET", "/metrics", "/metrics", {}, 200),
    ("token", "GET", "/metrics", "/metrics", {}, 401),
    ("ok", "GET", "/openapi.json", "/openapi.json", {}, 200),
    ("ok", "GET", "/v2", "/v2", {}, 200),
    ("ok", "GET", "/v2/health/live", "/v2/health/live", {}, 200),
    ("ok", "GET", "/v2/health/ready", "/v2/health/ready", {}, 200),
    ("damaged", "GET", "/v2/health/ready", "/v2/health/ready", {}, 400),
    ("ok", "GET", "/v2/models/{name}", "/v2/models/onnx-int8", {}, 200),
    ("ok", "GET", "/v2/models/{name}", "/v2/models/nope", {}, 404),
    ("token", "GET", "/v2/models/{name}", "/v2/models/onnx-int8", {}, 401),
    ("ok", "GET", "/v2/models/{name}/versions/{version}", "/v2/models/onnx-int8/versions/{version}", {}, 200),
    ("ok", "GET", "/v2/models/{name}/versions/{version}", "/v2/models/onnx-int8/versions/0", {}, 404),
    ("ok", "GET", "/v2/models/{name}/ready", "/v2/models/onnx-int8/ready", {}, 200),
    ("damaged", "GET", "/v2/models/{name}/ready", "/v2/models/onnx-fp32/ready", {}, 400),
    ("ok", "GET", "/v2/models/{name}/ready", "/v2/models/nope/ready", {}, 404),
    ("ok", "GET", "/v2/models/{name}/versions/{version}/ready", "/v2/models/onnx-int8/versions/{version}/ready", {}, 200),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-int8/infer", {"json": {"id": "a", **UINT8}}, 200),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-int8/infer", BINARY, 200),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-int8/infer", {"json": {"inputs": []}}, 400),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-int8/infer",
     {**BINARY, "headers": {"Inference-Header-Content-Length": "9999"}}, 400),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/nope/infer", {"json": UINT8}, 404),
    ("ok", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-int8/infer", {"json": {"inputs": [
        {"name": "image", "shape": [65, 28, 28], "datatype": "UINT8", "data": [0] * (784 * 65)}]}}, 413),
    ("damaged", "POST", "/v2/models/{name}/infer", "/v2/models/onnx-fp32/infer", {"json": UINT8}, 503),
    ("ok", "POST", "/v2/models/{name}/versions/{version}/infer", "/v2/models/onnx-int8/versions/{version}/infer",
     {"json": UINT8}, 200),
]


def validator_for(document: dict, pointer: str) -> Draft202012Validator:
    """A validator for the schema at a JSON pointer in the document, resolving its #/components references."""
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": "urn:openapi#" + quote(pointer, safe="/~")}, registry=registry)


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def test_the_document_is_valid_openapi(app):
    document = app.test_client().get("/openapi.json").json
    assert document == build_document()
    validate(document)


def test_every_route_is_documented_and_every_documented_route_exists(app):
    document = build_document()
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(ops) for path, ops in document["paths"].items()}
    assert routes == documented


def test_every_documented_operation_has_a_tested_success(app):
    tested = {(method.lower(), path) for _, method, path, _, _, status in CASES if 200 <= status < 300}
    documented = {(m, p) for p, ops in build_document()["paths"].items() for m in ops}
    assert documented <= tested, documented - tested


@pytest.mark.parametrize(("which", "method", "documented", "path", "kwargs", "status"), CASES,
                         ids=[f"{c[1]} {c[3]} {c[5]} ({c[0]})" for c in CASES])
def test_real_responses_match_the_documented_schema(apps, which, method, documented, path, kwargs, status):
    app = apps[which]
    if "{version}" in path:
        path = path.replace("{version}", app.extensions["mnist_edge"].registry.slots["onnx-int8"].entry["sha256"][:12])
    with app.test_client().open(path, method=method, **kwargs) as response:  # closes a served file
        response.get_data()
    assert response.status_code == status, response.get_data(as_text=True)
    responses = build_document()["paths"][documented][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {documented} does not document {status}"
    media = response.mimetype
    assert media in responses[str(status)]["content"], f"{method} {documented} {status} does not document {media}"
    pointer = f"/paths/{escape(documented)}/{method.lower()}/responses/{status}/content/{escape(media)}/schema"
    body = response.json if media == "application/json" else response.get_data().decode("latin-1")
    validator_for(build_document(), pointer).validate(body)
    if media == "application/octet-stream":  # the binary extension: its JSON header follows the JSON answer's schema
        header = response.get_data()[:int(response.headers["Inference-Header-Content-Length"])]
        validator_for(build_document(), "/components/schemas/V2InferResponse").validate(json.loads(header))


@pytest.mark.parametrize(("path", "method", "schema"), [
    ("/v1/nowhere", "GET", "Error"), ("/v1/models", "POST", "Error"), ("/v2/nowhere", "GET", "V2Error"),
])
def test_routing_errors_match_the_error_schemas(app, path, method, schema):
    response = app.test_client().open(path, method=method)
    assert response.status_code in (404, 405)
    validator_for(build_document(), f"/components/schemas/{schema}").validate(response.json)


def test_an_internal_error_matches_the_error_schema(app, monkeypatch):
    backend = app.extensions["mnist_edge"].registry.get().backend
    monkeypatch.setattr(backend, "predict", lambda batch: 1 / 0)
    response = app.test_client().post("/v1/predict", **RAW)
    assert response.status_code == 500
    validator_for(build_document(), "/paths/~1v1~1predict/post/responses/500/content/application~1json/schema").validate(
        response.json)


def test_the_schemas_reject_what_they_should():
    document = build_document()
    predict = validator_for(document, "/paths/~1v1~1predict/post/responses/200/content/application~1json/schema")
    good = {"digit": 3, "confidence": 0.9, "probabilities": [0.1] * 10, "is_digit": True, "digit_score": 0.97,
            "backend": "x", "format": "onnx", "precision": "int8", "timings_ms": {"preprocess": 1, "inference": 1, "total": 2}}
    predict.validate(good)
    for bad in ({**good, "digit": 11}, {**good, "probabilities": [0.1] * 9}, {k: v for k, v in good.items() if k != "backend"},
                {k: v for k, v in good.items() if k != "is_digit"}, {**good, "digit_score": 1.5}):
        assert not predict.is_valid(bad)


def test_the_request_schemas_say_what_the_server_takes(app):
    document = build_document()
    predict = validator_for(document, "/paths/~1v1~1predict/post/requestBody/content/application~1json/schema")
    compare = validator_for(document, "/paths/~1v1~1compare/post/requestBody/content/application~1json/schema")
    infer = validator_for(document, "/components/schemas/V2InferRequest")
    client = app.test_client()
    image = b64(DRAWING)
    for body, documented in (({"image": image, "backend": "onnx-int8"}, True), ({"image": image, "model": "x"}, False)):
        assert predict.is_valid(body) is documented
        assert (client.post("/v1/predict", json=body).status_code == 200) is documented
    assert compare.is_valid({"image": image}) and not compare.is_valid({"image": image, "backend": "onnx-int8"})
    assert client.post("/v1/compare", json={"image": image, "backend": "onnx-int8"}).status_code == 400
    binary_input = {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}
    assert infer.is_valid({"inputs": [binary_input], "parameters": {"binary_data_output": True}})
    assert infer.is_valid(UINT8)
    assert not infer.is_valid({"inputs": [{k: v for k, v in binary_input.items() if k != "parameters"}]})
