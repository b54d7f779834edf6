"""The OpenAPI 3.1 document for every route (request bodies, responses, error shapes), served at GET /openapi.json."""

from __future__ import annotations

from flask import Blueprint

from mnist_edge import __version__
from mnist_edge.runtime.api.docs import ASSETS


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
ERRORS = {400: "invalid JSON (invalid_json), an unknown parameter or JSON key (unknown_parameter, naming the valid "
               "ones), a malformed request or an undecodable image", 401: "bearer token missing or wrong (when one is set)",
          404: "unknown model", 413: "body, batch or image over its limit", 415: "unsupported Content-Type",
          500: "unexpected server error (details only in the server log)", 503: "the model failed to load",
          507: "the corrections database is at its size cap (--feedback-max-mb) or its disk is full; nothing stored"}
# The corrections routes fail for their own reasons: the feature off, the database unwritable.
FEEDBACK_ERRORS = {404: "the server runs with --no-feedback", 503: "the corrections database cannot be written "
                        "(read-only, I/O error, busy past its timeout); nothing stored, prediction still works"}
BINARY = {"type": "string", "format": "binary"}


def _responses(ok: dict, *errors: int, v2: bool = False, texts: dict[int, str] | None = None, status: int = 200) -> dict:
    error, texts = ref("V2Error" if v2 else "Error"), {**ERRORS, **(texts or {})}
    return {str(status): ok, **{str(code): _json(error, texts[code]) for code in (*errors, 500)}}


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
              "probabilities": {"type": "array", "items": NUM, "minItems": 10, "maxItems": 10,
                                "description": "the ten digits' probabilities, as if the drawing is a digit"},
              "is_digit": {**BOOL, "description": "false when the drawing is not a digit (digit_score below the "
                                                  "model's digit_threshold in /v1/models); digit and "
                                                  "probabilities stay"},
              "digit_score": {"type": "number", "minimum": 0, "maximum": 1,
                              "description": "the model's probability that the drawing is a digit at all"}}
PREDICTION_KEYS = ["digit", "confidence", "probabilities", "is_digit", "digit_score"]
IMAGE_OUT = {"image": {"type": "string", "contentEncoding": "base64", "description": "the 28 x 28 PNG the model saw"}}
MODEL = {"backend": STR, "format": STR, "precision": STR}
TENSOR_SPEC = _obj(["name", "shape", "dtype"], {"quantization": _obj(["scale", "zero_point"], scale=NUM, zero_point=INT)},
                   name=STR, shape={"type": "array", "items": INT}, dtype=STR)
V2_TENSOR_META = _obj(["name", "datatype", "shape"], name=STR, datatype=STR, shape={"type": "array", "items": INT})
# What the API enforces, stated so generated requests (schemathesis) and clients see it: base64 (or a base64 data: URL),
# non-empty rows of 0-255 values or 1, 3 or 4 channels of them. Equal row lengths and ink cannot be said in a schema.
IMAGE_IN = {"type": "string", "minLength": 1, "pattern": r"^(data:[^,]*;base64,)?[A-Za-z0-9+/=\s]+$",
            "description": "base64 PNG/JPEG (any Pillow format), or a data: URL"}
LEVEL = {"type": "number", "minimum": 0, "maximum": 255}
CHANNELS = {"oneOf": [{"type": "array", "items": LEVEL, "minItems": n, "maxItems": n} for n in (1, 3, 4)]}
PIXELS_IN = {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": {"oneOf": [LEVEL, CHANNELS]}},
             "description": "H x W (or H x W x C, C = 1, 3 or 4) rows of equal length, of 0-255 or 0-1 values"}
MAX_BATCH = 64  # ServeConfig.max_batch's default; a server configured otherwise answers 413 past its own
BATCH = {"type": "integer", "minimum": 1, "maximum": MAX_BATCH}


def _shape(*tail: dict) -> dict:
    items = [BATCH, {"const": 28}, {"const": 28}, *tail]
    return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items)}


SHAPE = {"oneOf": [_shape(), _shape({"const": 1})], "description": f"[N, 28, 28, 1] or [N, 28, 28], 1 <= N <= {MAX_BATCH}"}


def _v2_input(datatype: str, value: dict) -> dict:
    """A JSON input tensor: `data` holds N x 784 values of the datatype, row-major, flat."""
    data = {"type": "array", "items": value, "minItems": 784, "maxItems": 784 * MAX_BATCH,
            "description": "row-major values, N x 784 of them (flat; nested lists are taken too)"}
    return _obj(["name", "shape", "datatype", "data"], name=STR, shape=SHAPE, datatype={"const": datatype}, data=data)


V2_JSON_INPUTS = [_v2_input("FP32", NUM), _v2_input("UINT8", {"type": "integer", "minimum": 0, "maximum": 255})]
V2_BINARY_INPUT = _obj(["name", "shape", "datatype", "parameters"], name=STR, shape=SHAPE,
                       datatype={"enum": ["FP32", "UINT8"]}, parameters=_obj(["binary_data_size"], binary_data_size={
                           **INT, "minimum": 784, "description": "binary tensor data extension: the input's byte count "
                                                                 "(N x 784 x 4 for FP32, N x 784 for UINT8), sent after the JSON"}))


def _infer_request(inputs: list[dict]) -> dict:
    return _obj(["inputs"], {
        "id": STR,
        "parameters": _obj([], closed=False, binary_data_output={
            **BOOL, "description": "binary tensor data extension: every output as binary unless it says otherwise"}),
        "outputs": {"type": "array", "maxItems": 2, "items": _obj(["name"], {"parameters": _obj(
            [], binary_data={**BOOL, "description": "return this output as binary data after the JSON"})},
            closed=False, name={"enum": ["probabilities", "digit_score"]})}},  # other keys are ignored, as at the top level
        closed=False, inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": {"oneOf": inputs}})

PREDICT_OPTIONS = {"backend": STR, "return_image": BOOL}
COMPARE_OPTIONS = {"return_image": BOOL}  # every loaded model answers, so no backend

SCHEMAS = {
    "Error": _obj(["error"], error=_obj(["code", "message"], {"details": {"type": "object"}}, code=STR, message=STR)),
    "V2Error": _obj(["error"], error=STR),
    "Prediction": _obj(PREDICTION_KEYS, IMAGE_OUT, **PREDICTION),
    "PredictResponse": _obj([*PREDICTION_KEYS, "backend", "format", "precision", "timings_ms"],
                            IMAGE_OUT, **PREDICTION, **MODEL,
                            timings_ms=_obj(["preprocess", "inference", "total"], preprocess=NUM, inference=NUM, total=NUM)),
    "BatchResponse": _obj(["predictions", "backend", "format", "precision", "timings_ms"], **MODEL,
                          predictions={"type": "array", "items": ref("Prediction")},
                          timings_ms=_obj(["preprocess", "inference", "total"], preprocess=NUM, inference=NUM, total=NUM)),
    "ImageInput": _obj(["image"], PREDICT_OPTIONS, image=IMAGE_IN),
    "PixelsInput": _obj(["pixels"], PREDICT_OPTIONS, pixels=PIXELS_IN),
    "CompareImageInput": _obj(["image"], COMPARE_OPTIONS, image=IMAGE_IN),
    "ComparePixelsInput": _obj(["pixels"], COMPARE_OPTIONS, pixels=PIXELS_IN),
    "BatchInput": _obj(["instances"], PREDICT_OPTIONS, instances={
        "type": "array", "minItems": 1, "maxItems": MAX_BATCH, "description": "inputs run in one predict call",
        "items": {"oneOf": [_obj(["image"], image=IMAGE_IN), _obj(["pixels"], pixels=PIXELS_IN)]}}),
    "ReadImageInput": _obj(["image"], PREDICT_OPTIONS, image=IMAGE_IN),
    "ReadPixelsInput": _obj(["pixels"], PREDICT_OPTIONS, pixels=PIXELS_IN),
    "ReadResponse": _obj(["number", "digits", "backend", "format", "precision", "timings_ms"], **MODEL,
                         number={"type": "string", "pattern": "^[0-9]*$",
                                 "description": "the digits of the items with is_digit true, in reading order"},
                         digits={"type": "array", "minItems": 1, "items": ref("ReadItem"),
                                 "description": "every character found, left to right, digits or not; among two or more, "
                                                "an item is a digit from a digit_score of 0.3"},
                         timings_ms=_obj(["preprocess", "inference", "total"], preprocess=NUM, inference=NUM, total=NUM)),
    "ReadItem": _obj([*PREDICTION_KEYS, "box"], IMAGE_OUT, **PREDICTION, box={
        "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4,
        "description": "[x, y, width, height] in the pixels of the image as sent, after its EXIF rotation"}),
    "CompareResponse": _obj(["results", "agree", "timings_ms"], IMAGE_OUT, agree=BOOL,
                            results={"type": "array", "items": _obj(
                                ["backend", "format", "precision", *PREDICTION_KEYS, "inference_ms"],
                                **MODEL, **PREDICTION, inference_ms=NUM)},
                            timings_ms=_obj(["preprocess", "total"], preprocess=NUM, total=NUM)),
    "ModelsResponse": _obj(["default", "models"], default=NULLABLE_STR, models={"type": "array", "items": _obj(
        ["name", "format", "precision", "file", "size_bytes", "sha256", "accuracy", "digit_threshold", "loaded",
         "error", "default", "providers", "inputs", "outputs"],
        name=STR, format=STR, precision=STR, file=STR, size_bytes=INT, sha256=NULLABLE_STR,
        accuracy={"type": ["number", "null"]},
        digit_threshold={"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                         "description": "this model's digit_score below which it answers is_digit: false, chosen "
                                        "for it by convert; null while it is not loaded"},
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
    # The JSON header of either transport, and the plain JSON body (where an input must carry its `data`).
    "V2InferRequest": _infer_request([*V2_JSON_INPUTS, V2_BINARY_INPUT]),
    "V2InferJsonRequest": _infer_request(V2_JSON_INPUTS),
    "V2InferResponse": _obj(["model_name", "outputs"], {"model_version": STR, "id": STR}, model_name=STR,
                            outputs={"type": "array", "items": {**_obj(
                                ["name", "shape", "datatype"], {
                                    "data": {"type": "array", "items": NUM},
                                    "parameters": _obj(["binary_data_size"], binary_data_size=INT)},
                                name={"enum": ["probabilities", "digit_score"]}, shape={"type": "array", "items": INT},
                                datatype={"const": "FP32"}),
                                "oneOf": [{"required": ["data"]}, {"required": ["parameters"]}]}}),
    "FeedbackRequest": _obj(["image", "label"], {"answer": {
        "type": "object", "description": "what the model answered and the person saw (a /v1/predict answer: digit, "
                                         "is_digit, backend); stored as sent, up to 16 KB of JSON"}},
        image={**IMAGE_IN, "description": "the drawing: base64 PNG (up to 256 KB), or a data: URL of one"},
        label={"type": ["integer", "null"], "minimum": 0, "maximum": 9,
               "description": "what the drawing really is: 0-9, or null for not a digit"}),
    "FeedbackStored": _obj(["id", "count"], id={**INT, "description": "the stored correction's id"},
                           count={**INT, "description": "corrections stored now"}),
    "FeedbackStats": _obj(["count", "by_label", "corrected", "db_bytes"], count=INT, corrected={
        **INT, "description": "corrections whose label differs from the model's answer"}, db_bytes=INT,
        by_label={"type": "object", "additionalProperties": INT, "propertyNames": {"enum": [*map(str, range(10)), "none"]},
                  "description": "corrections per label, \"none\": not a digit"}),
    "Index": _obj(["name", "version", "links"], name=STR, version=STR, links={
        "type": "object", "additionalProperties": STR, "description": "where the API's parts are; each answers GET"}),
}



def _v1_body(options: dict, json_inputs: list[str]) -> dict:
    """A v1 image request in each transport; form fields and JSON keys beyond these are rejected."""
    upload = {**{name: STR for name in options}, "file": BINARY, "image": {**BINARY, "description": "same as file"}}
    return {"required": True, "content": {
        "multipart/form-data": {"schema": {**_obj([], upload), "oneOf": [{"required": ["file"]}, {"required": ["image"]}]}},
        "image/*": {"schema": BINARY},
        "application/octet-stream": {"schema": BINARY},
        "application/json": {"schema": {"oneOf": [ref(name) for name in json_inputs]}},
    }}


PREDICT_BODY = _v1_body(PREDICT_OPTIONS, ["ImageInput", "PixelsInput", "BatchInput"])
READ_BODY = _v1_body(PREDICT_OPTIONS, ["ReadImageInput", "ReadPixelsInput"])
COMPARE_BODY = _v1_body(COMPARE_OPTIONS, ["CompareImageInput", "ComparePixelsInput"])
V1_QUERY = [_param("backend", "query", STR, "model name (GET /v1/models); default: the server's default model"),
            _param("return_image", "query", BOOL, "include the 28 x 28 image the model saw")]
V1_STRICT = " Any other query parameter, form field or JSON key is a 400 (unknown_parameter) naming the valid ones."
NAME = _param("name", "path", STR, "model name")
VERSION = _param("version", "path", STR, "model version (GET /v2/models/{name} lists it)")
# The binary extension's body (a JSON header, then raw bytes, split where a header says) has no schema that a
# generator or validator could use, so it is described in words; the JSON body is the schema'd one.
V2_BINARY_TEXT = (
    "Also speaks the binary tensor data extension: send an `Inference-Header-Content-Length` header with the length "
    "in bytes of a V2InferRequest JSON header at the start of the body (Content-Type application/octet-stream or "
    "none), whose input has parameters.binary_data_size and no data; that many bytes (FP32 or UINT8, little-endian, "
    "row-major) follow the JSON.")
V2_INFER_BODY = {"required": True, "content": {"application/json": {"schema": ref("V2InferJsonRequest")}}}


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
            _responses(_json(ref("V2InferResponse"), "probabilities N x 10 and digit_score N x 1"), 400, 401, 404, 413, 503, v2=True),
            tag="v2", params=params, body=V2_INFER_BODY)}
        paths[prefix + "/infer"]["post"]["description"] = V2_BINARY_TEXT
        paths[prefix + "/infer"]["post"]["responses"]["200"]["content"]["application/octet-stream"] = {"schema": {
            **BINARY, "description": "binary tensor data extension (when an output asks for it): a V2InferResponse "
                                     "JSON header, then each binary output as little-endian float32 in output order "
                                     "(probabilities N x 10, digit_score N x 1); "
                                     "the Inference-Header-Content-Length response header gives the JSON's length"}}
    return paths


def build_document() -> dict:
    """The whole OpenAPI document."""
    paths = {
        "/v1/predict": {"post": _op(
            "Classify one image (upload, raw body or JSON) or a JSON batch (`instances`)." + V1_STRICT,
            _responses(_json({"oneOf": [ref("PredictResponse"), ref("BatchResponse")]}, "the answer"),
                       400, 401, 404, 413, 415, 503), tag="v1", body=PREDICT_BODY, params=V1_QUERY)},
        "/v1/read": {"post": _op(
            "Read a handwritten number: one line of digits in one image (upload, raw body or JSON), cut into characters "
            "that are all read in one predict call; a blank image is a 400, more characters than the server's "
            "--max-digits a 413." + V1_STRICT,
            _responses(_json(ref("ReadResponse"), "the number and each character"), 400, 401, 404, 413, 415, 503),
            tag="v1", body=READ_BODY, params=V1_QUERY)},
        "/v1/compare": {"post": _op(
            "One image through every loaded model." + V1_STRICT, _responses(_json(ref("CompareResponse"), "every model's answer"),
                                                               400, 401, 413, 415, 503), tag="v1", body=COMPARE_BODY,
            params=V1_QUERY[1:])},
        "/v1/models": {"get": _op("Every configured model, loaded or failed (with the reason); takes no parameters",
                                  _responses(_json(ref("ModelsResponse"), "the models"), 400, 401), tag="v1")},
        "/v1/feedback": {
            "post": _op("Store a correction: a drawing and what it really is; 201 once it is on disk." + V1_STRICT,
                        _responses(_json(ref("FeedbackStored"), "stored durably (fsynced)"), 400, 401, 404, 413, 415,
                                   503, 507, texts=FEEDBACK_ERRORS, status=201),
                        tag="v1", body={"required": True, "content": {"application/json": {"schema": ref("FeedbackRequest")}}}),
            "get": _op("How many corrections are stored, per label, and how many the model got wrong",
                       _responses(_json(ref("FeedbackStats"), "the counts"), 400, 401, 404, 503, texts=FEEDBACK_ERRORS),
                       tag="v1")},
        "/": {"get": _op("Links to the API's parts", _responses(_json(ref("Index"), "links"), 401), tag="ops")},
        "/docs": {"get": _op("This document rendered by Swagger UI (served from the flask-swagger-ui package)", {
            "200": {"description": "the page", "content": {"text/html": {"schema": STR}}},
            "401": _json(ref("Error"), ERRORS[401]),
            "503": _json(ref("Error"), "the flask-swagger-ui package is not installed")}, tag="ops")},
        "/docs/{asset}": {"get": _op("A Swagger UI file the page loads", {
            "200": {"description": "the file", "content": {media: {"schema": BINARY} for media in ASSETS.values()}},
            **{str(code): _json(ref("Error"), text) for code, text in (
                (401, ERRORS[401]), (404, "not one of the page's files"),
                (503, "the flask-swagger-ui package is not installed"))}},
            tag="ops", params=[_param("asset", "path", {"enum": list(ASSETS)}, "file name")])},
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
            "shapes. When the server has a token, every route but /healthz, /readyz and /v2/health/* wants it. POST "
            "/v2/models/{name}/infer also speaks the binary tensor data extension (Inference-Header-Content-Length).")},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


bp = Blueprint("openapi", __name__)
DOCUMENT = build_document()  # fixed for the life of the process: built once, not per request


@bp.get("/openapi.json")
def openapi_json() -> dict:
    """The OpenAPI document."""
    return DOCUMENT
