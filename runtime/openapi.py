"""The OpenAPI 3.1 document for every route (request bodies, responses, error shapes), served at GET /openapi.json."""

from __future__ import annotations

from flask import Blueprint

from mnist_edge import __version__


def ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], optional: dict | None = None, *, closed: bool = True, **props) -> dict:
    schema = {"type": "object", "required": required, "properties": {**props, **(optional or {})}}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NUM, INT, STR, BOOL = {"type": "number"}, {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
NULLABLE_STR = {"type": ["string", "null"]}
ERRORS = {400: "malformed request or undecodable image", 401: "bearer token missing or wrong (when one is set)",
          404: "unknown model", 413: "body, batch or image over its limit", 415: "unsupported Content-Type",
          500: "unexpected server error (details only in the server log)", 503: "the model failed to load"}


def _responses(ok: dict, *errors: int, v2: bool = False) -> dict:
    error = ref("V2Error" if v2 else "Error")
    return {"200": ok, **{str(code): _json(error, ERRORS[code]) for code in (*errors, 500)}}


def _op(summary: str, responses: dict, *, tag: str, body: dict | None = None, params: list | None = None,
        public: bool = False) -> dict:
    op = {"summary": summary, "tags": [tag], "responses": responses}
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


def _param(name: str, where: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


PREDICTION = {"digit": {"type": "integer", "minimum": 0, "maximum": 9},
              "confidence": {"type": "number", "minimum": 0, "maximum": 1},
              "probabilities": {"type": "array", "items": NUM, "minItems": 10, "maxItems": 10}}
IMAGE_OUT = {"image": {"type": "string", "contentEncoding": "base64", "description": "the 28 x 28 PNG the model saw"}}
MODEL = {"backend": STR, "format": STR, "precision": STR}
TENSOR_SPEC = _obj(["name", "shape", "dtype"], {"quantization": _obj(["scale", "zero_point"], scale=NUM, zero_point=INT)},
                   name=STR, shape={"type": "array", "items": INT}, dtype=STR)
V2_TENSOR_META = _obj(["name", "datatype", "shape"], name=STR, datatype=STR, shape={"type": "array", "items": INT})
IMAGE_IN = _obj(["image"], {"backend": STR, "return_image": BOOL}, image={
    "type": "string", "description": "base64 PNG/JPEG (any Pillow format), or a data: URL"})
PIXELS_IN = _obj(["pixels"], {"backend": STR, "return_image": BOOL}, pixels={
    "type": "array", "description": "H x W (or H x W x C) rows of 0-255 or 0-1 values",
    "items": {"type": "array"}})

SCHEMAS = {
    "Error": _obj(["error"], error=_obj(["code", "message"], {"details": {"type": "object"}}, code=STR, message=STR)),
    "V2Error": _obj(["error"], error=STR),
    "Prediction": _obj(["digit", "confidence", "probabilities"], IMAGE_OUT, **PREDICTION),
    "PredictResponse": _obj(["digit", "confidence", "probabilities", "backend", "format", "precision", "timings_ms"],
                            IMAGE_OUT, **PREDICTION, **MODEL,
                            timings_ms=_obj(["preprocess", "inference", "total"], preprocess=NUM, inference=NUM, total=NUM)),
    "BatchResponse": _obj(["predictions", "backend", "format", "precision", "timings_ms"], **MODEL,
                          predictions={"type": "array", "items": ref("Prediction")},
                          timings_ms=_obj(["preprocess", "inference", "total"], preprocess=NUM, inference=NUM, total=NUM)),
    "ImageInput": IMAGE_IN,
    "PixelsInput": PIXELS_IN,
    "BatchInput": _obj(["instances"], {"backend": STR, "return_image": BOOL}, instances={
        "type": "array", "minItems": 1, "description": "at most max_batch (64 by default) inputs; one predict call",
        "items": {"oneOf": [_obj(["image"], image=STR), _obj(["pixels"], pixels={"type": "array"})]}}),
    "CompareResponse": _obj(["results", "agree", "timings_ms"], IMAGE_OUT, agree=BOOL,
                            results={"type": "array", "items": _obj(
                                ["backend", "format", "precision", "digit", "confidence", "probabilities", "inference_ms"],
                                **MODEL, **PREDICTION, inference_ms=NUM)},
                            timings_ms=_obj(["preprocess", "total"], preprocess=NUM, total=NUM)),
    "ModelsResponse": _obj(["default", "models"], default=NULLABLE_STR, models={"type": "array", "items": _obj(
        ["name", "format", "precision", "file", "size_bytes", "sha256", "accuracy", "loaded", "error", "default",
         "providers", "inputs", "outputs"],
        name=STR, format=STR, precision=STR, file=STR, size_bytes=INT, sha256=NULLABLE_STR,
        accuracy={"type": ["number", "null"]},
        loaded=BOOL, error=NULLABLE_STR, default=BOOL, providers={"type": ["array", "null"], "items": STR},
        inputs={"type": "array", "items": TENSOR_SPEC}, outputs={"type": "array", "items": TENSOR_SPEC})}),
    "Health": _obj(["status", "version"], status={"const": "ok"}, version=STR),
    "Ready": _obj(["ready", "default", "models"], ready=BOOL, default=NULLABLE_STR, models={"type": "array", "items": _obj(
        ["name", "loaded", "error"], name=STR, loaded=BOOL, error=NULLABLE_STR)}),
    "V2ServerMetadata": _obj(["name", "version", "extensions"], name=STR, version=STR,
                             extensions={"type": "array", "items": STR}),
    "V2Live": _obj(["live"], live=BOOL),
    "V2Ready": _obj(["ready"], ready=BOOL),
    "V2ModelReady": _obj(["name", "ready"], name=STR, ready=BOOL),
    "V2ModelMetadata": _obj(["name", "platform", "inputs", "outputs"], {"versions": {"type": "array", "items": STR}},
                            name=STR, platform=STR, inputs={"type": "array", "items": V2_TENSOR_META},
                            outputs={"type": "array", "items": V2_TENSOR_META}),
    "V2InferRequest": _obj(["inputs"], {"id": STR, "parameters": {"type": "object"},
                                        "outputs": {"type": "array", "items": _obj(["name"], closed=False, name=STR)}},
                           closed=False, inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": _obj(
                               ["name", "shape", "datatype", "data"], {"parameters": {"type": "object"}}, name=STR,
                               shape={"type": "array", "items": INT,
                                      "description": "[N, 28, 28, 1] (FP32) or [N, 28, 28] (UINT8)"},
                               datatype={"enum": ["FP32", "UINT8"]},
                               data={"type": "array", "description": "row-major values, flat or nested"})}),
    "V2InferResponse": _obj(["model_name", "outputs"], {"model_version": STR, "id": STR}, model_name=STR,
                            outputs={"type": "array", "items": _obj(
                                ["name", "shape", "datatype", "data"], name={"const": "probabilities"},
                                shape={"type": "array", "items": INT}, datatype={"const": "FP32"},
                                data={"type": "array", "items": NUM})}),
}

PREDICT_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": _obj(["file"], {"backend": STR, "return_image": STR}, closed=False,
                                           file={"type": "string", "format": "binary"})},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"oneOf": [ref("ImageInput"), ref("PixelsInput"), ref("BatchInput")]}},
}}
V1_QUERY = [_param("backend", "query", STR, "model name (GET /v1/models); default: the server's default model"),
            _param("return_image", "query", BOOL, "include the 28 x 28 image the model saw (alias: image)")]
NAME = _param("name", "path", STR, "model name")
VERSION = _param("version", "path", STR, "model version (GET /v2/models/{name} lists it)")


def _v2_model_paths() -> dict:
    paths = {}
    for prefix, params in (("/v2/models/{name}", [NAME]), ("/v2/models/{name}/versions/{version}", [NAME, VERSION])):
        paths[prefix] = {"get": _op("Model metadata", _responses(_json(ref("V2ModelMetadata"), "metadata"), 401, 404, v2=True),
                                    tag="v2", params=params)}
        paths[prefix + "/ready"] = {"get": _op("Model readiness: 200 ready, 400 not ready", {
            **_responses(_json(ref("V2ModelReady"), "ready"), 401, 404, v2=True),
            "400": _json(ref("V2ModelReady"), "the model failed to load")}, tag="v2", params=params)}
        paths[prefix + "/infer"] = {"post": _op(
            "Inference (Open Inference Protocol): FP32 input used as is, UINT8 MNIST pixels scaled by 1/255",
            _responses(_json(ref("V2InferResponse"), "probabilities N x 10"), 400, 401, 404, 413, 503, v2=True),
            tag="v2", params=params,
            body={"required": True, "content": {"application/json": {"schema": ref("V2InferRequest")}}})}
    return paths


def build_document() -> dict:
    """The whole OpenAPI document."""
    paths = {
        "/v1/predict": {"post": _op(
            "Classify one image (upload, raw body or JSON) or a JSON batch (`instances`)",
            _responses(_json({"oneOf": [ref("PredictResponse"), ref("BatchResponse")]}, "the answer"),
                       400, 401, 404, 413, 415, 503), tag="v1", body=PREDICT_BODY, params=V1_QUERY)},
        "/v1/compare": {"post": _op(
            "One image through every loaded model", _responses(_json(ref("CompareResponse"), "every model's answer"),
                                                               400, 401, 413, 415, 503), tag="v1", body=PREDICT_BODY,
            params=V1_QUERY[1:])},
        "/v1/models": {"get": _op("Every configured model, loaded or failed (with the reason)",
                                  _responses(_json(ref("ModelsResponse"), "the models"), 401), tag="v1")},
        "/healthz": {"get": _op("Liveness", _responses(_json(ref("Health"), "alive")), tag="ops", public=True)},
        "/readyz": {"get": _op("Readiness: 200 once the default model serves", {
            **_responses(_json(ref("Ready"), "ready")), "503": _json(ref("Ready"), "not ready")}, tag="ops", public=True)},
        "/metrics": {"get": _op("Prometheus metrics", {
            "200": {"description": "text exposition format 0.0.4", "content": {"text/plain": {"schema": STR}}},
            "401": _json(ref("Error"), ERRORS[401])}, tag="ops")},
        "/openapi.json": {"get": _op("This document", {
            "200": _json({"type": "object"}, "OpenAPI 3.1"), "401": _json(ref("Error"), ERRORS[401])}, tag="ops")},
        "/v2": {"get": _op("Server metadata", _responses(_json(ref("V2ServerMetadata"), "metadata"), 401, v2=True), tag="v2")},
        "/v2/health/live": {"get": _op("Server liveness", _responses(_json(ref("V2Live"), "live"), v2=True),
                                       tag="v2", public=True)},
        "/v2/health/ready": {"get": _op("Server readiness: 200 when every configured model is loaded, else 400", {
            **_responses(_json(ref("V2Ready"), "ready"), v2=True), "400": _json(ref("V2Ready"), "not ready")},
            tag="v2", public=True)},
        **_v2_model_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "mnist-edge", "version": __version__, "description": (
            "Handwritten-digit recognition at the edge. v1 errors are {error: {code, message, details}}; /v2 errors are "
            "{error: message} (Open Inference Protocol). An unknown route is a 404 and a wrong method a 405, in the same "
            "shapes. When the server has a token, every route but /healthz, /readyz and /v2/health/* wants it.")},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_json() -> dict:
    """The OpenAPI document."""
    return build_document()
