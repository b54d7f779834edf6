"""The bad-input corpus: malformed requests for every route and body kind, each with the answer it must get.

Rows with `raw` are whole HTTP requests written to a socket (broken headers, lying Content-Length); the rest go
through http.client. `layer="wsgi"` marks answers the WSGI server gives before Flask sees the request: test_bad_input
sends the corpus to waitress (`benchmarks/background.py`, also the non-Linux server), whose answers are plain text; gunicorn,
the production server, gives them in the v1 JSON shape (`reading_worker.json_error`). Every other row must come back in the
API's JSON error shape with `code` (v1) or a message (v2).
"""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import orjson
from PIL import Image

JSON = {"Content-Type": "application/json"}
PNG_TYPE = {"Content-Type": "image/png"}
INFER = "/v2/models/onnx-int8/infer"
BODY_LIMIT = 5 * 1024 * 1024  # ServeConfig.max_body_bytes


@dataclass(frozen=True)
class Bad:
    """One malformed request and the answer it must get."""

    name: str
    method: str
    path: str
    status: int  # 0: the server hangs up without an answer
    code: str | None = None  # the v1 error code; None for /v2 (its errors are a bare message) and the WSGI layer
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    raw: bytes | None = None  # the whole request, sent as is on a socket
    layer: str = "app"  # "wsgi": answered by the WSGI server before Flask (waitress in test_bad_input: plain text)
    token: str | None = None  # sent to the server that has a token, with this Authorization header ("" = none)


def image_bytes(array: np.ndarray, fmt: str) -> bytes:
    """uint8 pixels in an image file format."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _digit() -> np.ndarray:
    page = np.full((64, 64), 255, dtype=np.uint8)
    page[10:54, 28:36] = 0
    return page


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A 1 x 1 PNG whose header claims width x height pixels (a decompression bomb, a few dozen bytes)."""
    raw = bytearray(image_bytes(np.zeros((1, 1), dtype=np.uint8), "PNG"))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    raw[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc_at = ihdr + 13
    raw[crc_at:crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr - 4:crc_at])))
    return bytes(raw)


def corrupt_png() -> bytes:
    """A PNG with a valid header and garbage pixel data."""
    raw = bytearray(image_bytes(_digit(), "PNG"))
    for at in range(60, len(raw) - 20, 7):
        raw[at] ^= 0x5A
    return bytes(raw)


def _strokes(count: int) -> bytes:
    """A PNG of `count` upright strokes of one height in a row: as many characters for /v1/read."""
    page = np.full((40, 10 * count + 10), 255, dtype=np.uint8)
    for k in range(count):
        page[5:35, 10 + 10 * k : 14 + 10 * k] = 0
    return image_bytes(page, "PNG")


def _json(value: str) -> bytes:
    return value.encode()


def _pixels_body(rows: object) -> bytes:
    return orjson.dumps({"pixels": rows})


def _feedback(image: object, *, omit: str | None = None, **fields: object) -> bytes:
    """A correction's JSON body: the image, label 3 and an answer unless told otherwise."""
    body = {"image": image, "label": 3, "answer": {"digit": 5, "is_digit": True}, **fields}
    return orjson.dumps({key: value for key, value in body.items() if key != omit})


def _v2(tensor: dict, **extra: object) -> bytes:
    return orjson.dumps({"inputs": [tensor], **extra})


def _tensor(shape: list, datatype: str = "UINT8", data: object = None, **extra: object) -> dict:
    count = math.prod(shape) if all(isinstance(d, int) and d > 0 for d in shape) else 0
    return {"name": "image", "shape": shape, "datatype": datatype, "data": [0] * count if data is None else data, **extra}


def _binary(header: dict, tail: bytes, length: str | None = None) -> tuple[bytes, dict]:
    head = orjson.dumps(header)
    return head + tail, {"Content-Type": "application/octet-stream",
                         "Inference-Header-Content-Length": length if length is not None else str(len(head))}


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "corpus") -> tuple[bytes, dict]:
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _raw(request_line: str, headers: list[bytes], body: bytes = b"") -> bytes:
    return request_line.encode() + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def corpus() -> list[Bad]:
    """Every malformed request with its documented status (built fresh: some rows hold megabytes)."""
    png = image_bytes(_digit(), "PNG")
    jpeg = image_bytes(_digit(), "JPEG")
    gif = image_bytes(_digit(), "GIF")
    good_pixels = _digit().tolist()
    b64png = base64.b64encode(png).decode()
    upload_unknown = _multipart([("file", "d.png", png), ("colour", None, b"red")])
    upload_none = _multipart([("backend", None, b"onnx-int8")])
    binary_ok = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8",
                             "parameters": {"binary_data_size": 784}}]}
    rows = [
        # v1 image bodies
        Bad("truncated png", "POST", "/v1/predict", 400, "bad_image", png[: len(png) // 2], PNG_TYPE),
        Bad("corrupt png data", "POST", "/v1/predict", 400, "bad_image", corrupt_png(), PNG_TYPE),
        Bad("png signature only", "POST", "/v1/predict", 400, "bad_image", png[:8], PNG_TYPE),
        Bad("truncated jpeg", "POST", "/v1/predict", 400, "bad_image", jpeg[: len(jpeg) // 2], {"Content-Type": "image/jpeg"}),
        Bad("jpeg marker then garbage", "POST", "/v1/compare", 400, "bad_image", b"\xff\xd8\xff\xe0 not a jpeg",
            {"Content-Type": "image/jpeg"}),
        Bad("truncated gif", "POST", "/v1/predict", 400, "bad_image", gif[: len(gif) // 2], {"Content-Type": "image/gif"}),
        Bad("text sent as png", "POST", "/v1/predict", 400, "bad_image", b"just some words", PNG_TYPE),
        Bad("html sent as jpeg", "POST", "/v1/predict", 400, "bad_image", b"<html><body>hi</body></html>",
            {"Content-Type": "image/jpeg"}),
        Bad("zip as octet-stream", "POST", "/v1/predict", 400, "bad_image", b"PK\x03\x04" + b"\x00" * 60,
            {"Content-Type": "application/octet-stream"}),
        Bad("decompression bomb png", "POST", "/v1/predict", 413, "too_large", bomb_png(), PNG_TYPE),
        Bad("huge image 2100x2100", "POST", "/v1/predict", 413, "too_large",
            image_bytes(np.zeros((2100, 2100), dtype=np.uint8), "PNG"), PNG_TYPE),
        Bad("tiny image 1x1", "POST", "/v1/predict", 400, "blank_image", image_bytes(np.zeros((1, 1), np.uint8), "PNG"),
            PNG_TYPE),
        Bad("blank canvas", "POST", "/v1/compare", 400, "blank_image",
            image_bytes(np.full((280, 280), 255, np.uint8), "PNG"), PNG_TYPE),
        Bad("empty png body", "POST", "/v1/predict", 400, "bad_image", b"", PNG_TYPE),
        Bad("empty octet-stream body", "POST", "/v1/compare", 400, "bad_image", b"",
            {"Content-Type": "application/octet-stream"}),
        # content types
        Bad("no content type", "POST", "/v1/predict", 415, "unsupported_media_type", png),
        Bad("text/plain", "POST", "/v1/predict", 415, "unsupported_media_type", b"7", {"Content-Type": "text/plain"}),
        Bad("form-urlencoded", "POST", "/v1/compare", 415, "unsupported_media_type", b"image=abc",
            {"Content-Type": "application/x-www-form-urlencoded"}),
        Bad("multipart without file", "POST", "/v1/predict", 400, "malformed_request", *upload_none),
        Bad("multipart unknown field", "POST", "/v1/predict", 400, "unknown_parameter", *upload_unknown),
        Bad("multipart never closed", "POST", "/v1/predict", 400, "malformed_request", b"--xx\r\nbroken multipart",
            {"Content-Type": "multipart/form-data; boundary=xx"}),
        Bad("multipart without boundary", "POST", "/v1/predict", 400, "malformed_request", png,
            {"Content-Type": "multipart/form-data"}),
        # query parameters and model names
        Bad("unknown query parameter", "POST", "/v1/predict?colour=red", 400, "unknown_parameter", png, PNG_TYPE),
        Bad("unknown backend", "POST", "/v1/predict?backend=nope", 404, "unknown_name", png, PNG_TYPE),
        Bad("compare takes no backend", "POST", "/v1/compare?backend=onnx-int8", 400, "unknown_parameter", png, PNG_TYPE),
        Bad("models takes no parameters", "GET", "/v1/models?all=1", 400, "unknown_parameter"),
        # JSON syntax and size
        Bad("broken json", "POST", "/v1/predict", 400, "invalid_json", b"{not json", JSON),
        Bad("json not utf-8", "POST", "/v1/predict", 400, "invalid_json", b'{"image": "\xff\xfe"}', JSON),
        Bad("json nested 100000 deep", "POST", "/v1/predict", 400, "invalid_json", b"[" * 100_000, JSON),
        Bad("json NaN literal", "POST", "/v1/predict", 400, "invalid_json", b'{"pixels": [[NaN]]}', JSON),
        Bad("json infinity 1e309", "POST", "/v1/predict", 400, "invalid_json", b'{"pixels": [[1e309]]}', JSON),
        Bad("enormous json over the body limit", "POST", "/v1/predict", 413, "too_large",
            b'{"pixels": [' + b"0," * (BODY_LIMIT // 2) + b"0]}", JSON),
        Bad("json array body", "POST", "/v1/predict", 400, "malformed_request", b"[1, 2, 3]", JSON),
        Bad("json null body", "POST", "/v1/predict", 400, "malformed_request", b"null", JSON),
        Bad("empty json object", "POST", "/v1/predict", 400, "malformed_request", b"{}", JSON),
        Bad("unknown json key", "POST", "/v1/predict", 400, "unknown_parameter", b'{"foo": 1}', JSON),
        # pixels
        Bad("zero-size pixels [[]]", "POST", "/v1/predict", 400, "bad_image", b'{"pixels": [[]]}', JSON),
        Bad("empty pixels []", "POST", "/v1/predict", 400, "bad_image", b'{"pixels": []}', JSON),
        Bad("zero-size pixels in compare", "POST", "/v1/compare", 400, "bad_image", b'{"pixels": [[], []]}', JSON),
        Bad("ragged pixels", "POST", "/v1/predict", 400, "malformed_request", b'{"pixels": [[1, 2], [3]]}', JSON),
        Bad("pixels a string", "POST", "/v1/predict", 400, "malformed_request", b'{"pixels": "abc"}', JSON),
        Bad("pixels one row", "POST", "/v1/predict", 400, "bad_image", b'{"pixels": [1, 2, 3]}', JSON),
        Bad("pixels 4-d", "POST", "/v1/predict", 400, "bad_image", b'{"pixels": [[[[1]]]]}', JSON),
        Bad("pixels nested 200 deep", "POST", "/v1/predict", 400, "malformed_request",
            b'{"pixels": ' + b"[" * 200 + b"0" + b"]" * 200 + b"}", JSON),
        Bad("pixels with null", "POST", "/v1/predict", 400, "bad_image", b'{"pixels": [[0, null], [1, 0]]}', JSON),
        Bad("pixels negative", "POST", "/v1/predict", 400, "bad_image", _pixels_body([[-1, 0], [0, 0]]), JSON),
        Bad("pixels over 255", "POST", "/v1/predict", 400, "bad_image", _pixels_body([[300, 0], [0, 0]]), JSON),
        Bad("pixels five channels", "POST", "/v1/predict", 400, "bad_image", _pixels_body([[[0] * 5] * 3] * 3), JSON),
        # base64 and data URLs
        Bad("image a number", "POST", "/v1/predict", 400, "malformed_request", b'{"image": 12}', JSON),
        Bad("image empty string", "POST", "/v1/predict", 400, "malformed_request", b'{"image": ""}', JSON),
        Bad("bad base64", "POST", "/v1/predict", 400, "bad_image", b'{"image": "!!!"}', JSON),
        Bad("base64 of text", "POST", "/v1/predict", 400, "bad_image",
            _json(f'{{"image": "{base64.b64encode(b"hello world").decode()}"}}'), JSON),
        Bad("data url not base64", "POST", "/v1/predict", 400, "malformed_request",
            b'{"image": "data:image/png,abc"}', JSON),
        Bad("data url bad base64", "POST", "/v1/compare", 400, "bad_image",
            b'{"image": "data:image/png;base64,%%%"}', JSON),
        Bad("image and pixels both", "POST", "/v1/predict", 400, "malformed_request",
            _json(f'{{"image": "{b64png}", "pixels": [[1]]}}'), JSON),
        # batches and options
        Bad("instances empty", "POST", "/v1/predict", 400, "malformed_request", b'{"instances": []}', JSON),
        Bad("instances an object", "POST", "/v1/predict", 400, "malformed_request", b'{"instances": {}}', JSON),
        Bad("instances of numbers", "POST", "/v1/predict", 400, "malformed_request", b'{"instances": [1, null]}', JSON),
        Bad("oversize batch 65", "POST", "/v1/predict", 413, "too_large",
            _json('{"instances": [' + ",".join([f'{{"image": "{b64png}"}}'] * 65) + "]}"), JSON),
        Bad("instances to compare", "POST", "/v1/compare", 400, "malformed_request",
            _json(f'{{"instances": [{{"image": "{b64png}"}}]}}'), JSON),
        Bad("backend not a string", "POST", "/v1/predict", 400, "malformed_request",
            _json(f'{{"image": "{b64png}", "backend": ["x"]}}'), JSON),
        Bad("return_image a list in json beside the query's", "POST", "/v1/compare?return_image=false", 400,
            "malformed_request", _pixels_body(good_pixels)[:-1] + b', "return_image": [[1]]}', JSON),
        Bad("return_image a string in json", "POST", "/v1/read", 400, "malformed_request",
            _pixels_body(good_pixels)[:-1] + b', "return_image": "yes"}', JSON),
        Bad("backend unknown in json", "POST", "/v1/predict", 404, "unknown_name",
            _pixels_body(good_pixels)[:-1] + b', "backend": "nope"}', JSON),
        # /v1/read: predict's bodies for one image, a cap on the characters found
        Bad("read truncated png", "POST", "/v1/read", 400, "bad_image", png[: len(png) // 2], PNG_TYPE),
        Bad("read blank canvas", "POST", "/v1/read", 400, "blank_image",
            image_bytes(np.full((280, 840), 255, np.uint8), "PNG"), PNG_TYPE),
        Bad("read decompression bomb", "POST", "/v1/read", 413, "too_large", bomb_png(), PNG_TYPE),
        Bad("read 40 strokes over the 32-character cap", "POST", "/v1/read", 413, "too_large", _strokes(40), PNG_TYPE),
        Bad("read takes no instances", "POST", "/v1/read", 400, "unknown_parameter",
            _json(f'{{"instances": [{{"image": "{b64png}"}}]}}'), JSON),
        Bad("read unknown query parameter", "POST", "/v1/read?digits=4", 400, "unknown_parameter", png, PNG_TYPE),
        Bad("read unknown backend", "POST", "/v1/read?backend=nope", 404, "unknown_name", png, PNG_TYPE),
        Bad("read text/plain", "POST", "/v1/read", 415, "unsupported_media_type", b"2024", {"Content-Type": "text/plain"}),
        Bad("read ragged pixels", "POST", "/v1/read", 400, "malformed_request", b'{"pixels": [[1, 2], [3]]}', JSON),
        Bad("read data url bad base64", "POST", "/v1/read", 400, "bad_image", b'{"image": "data:image/png;base64,%%%"}',
            JSON),
        Bad("get on read", "GET", "/v1/read", 405, "method_not_allowed"),
        Bad("read without token", "POST", "/v1/read", 401, "unauthorized", png, PNG_TYPE, token=""),
        # routes and methods
        Bad("get on predict", "GET", "/v1/predict", 405, "method_not_allowed"),
        Bad("delete models", "DELETE", "/v1/models", 405, "method_not_allowed"),
        Bad("no such route", "GET", "/v1/nothing/here", 404, "not_found"),
        # v1 corrections: {"image": base64 PNG, "label": 0-9 or null, "answer": {...}}
        Bad("feedback as a png body", "POST", "/v1/feedback", 415, "unsupported_media_type", png, PNG_TYPE),
        Bad("feedback broken json", "POST", "/v1/feedback", 400, "invalid_json", b'{"label": ', JSON),
        Bad("feedback json list", "POST", "/v1/feedback", 400, "malformed_request", b"[]", JSON),
        Bad("feedback without label", "POST", "/v1/feedback", 400, "malformed_request", _feedback(b64png, omit="label"),
            JSON),
        Bad("feedback without image", "POST", "/v1/feedback", 400, "malformed_request", b'{"label": 3}', JSON),
        Bad("feedback label 10", "POST", "/v1/feedback", 400, "malformed_request", _feedback(b64png, label=10), JSON),
        Bad("feedback label a string", "POST", "/v1/feedback", 400, "malformed_request", _feedback(b64png, label="3"),
            JSON),
        Bad("feedback label true", "POST", "/v1/feedback", 400, "malformed_request", _feedback(b64png, label=True), JSON),
        Bad("feedback label 3.5", "POST", "/v1/feedback", 400, "malformed_request", _feedback(b64png, label=3.5), JSON),
        Bad("feedback image a jpeg", "POST", "/v1/feedback", 400, "bad_image",
            _feedback(base64.b64encode(jpeg).decode()), JSON),
        Bad("feedback corrupt png", "POST", "/v1/feedback", 400, "bad_image",
            _feedback(base64.b64encode(corrupt_png()).decode()), JSON),
        Bad("feedback png signature only", "POST", "/v1/feedback", 400, "bad_image",
            _feedback(base64.b64encode(png[:8]).decode()), JSON),
        Bad("feedback bad base64", "POST", "/v1/feedback", 400, "bad_image", _feedback("!!!"), JSON),
        Bad("feedback image a number", "POST", "/v1/feedback", 400, "malformed_request", _feedback(12), JSON),
        Bad("feedback png bomb", "POST", "/v1/feedback", 413, "too_large",
            _feedback(base64.b64encode(bomb_png()).decode()), JSON),
        Bad("feedback png over 256 KB", "POST", "/v1/feedback", 413, "too_large", _feedback(base64.b64encode(
            image_bytes(np.random.default_rng(0).integers(0, 256, (600, 600), dtype=np.uint8), "PNG")).decode()), JSON),
        Bad("feedback answer a list", "POST", "/v1/feedback", 400, "malformed_request",
            _feedback(b64png, answer=[3]), JSON),
        Bad("feedback answer over 16 KB", "POST", "/v1/feedback", 413, "too_large",
            _feedback(b64png, answer={"note": "x" * 20_000}), JSON),
        Bad("feedback unknown json key", "POST", "/v1/feedback", 400, "unknown_parameter",
            _feedback(b64png, digit=3), JSON),
        Bad("feedback unknown query parameter", "POST", "/v1/feedback?label=3", 400, "unknown_parameter",
            _feedback(b64png), JSON),
        Bad("feedback stats with a parameter", "GET", "/v1/feedback?label=3", 400, "unknown_parameter"),
        Bad("delete feedback", "DELETE", "/v1/feedback", 405, "method_not_allowed"),
        # v2 JSON
        Bad("v2 unknown model", "POST", "/v2/models/nope/infer", 404, None, _v2(_tensor([1, 28, 28])), JSON),
        Bad("v2 unknown version", "POST", "/v2/models/onnx-int8/versions/0/infer", 404, None,
            _v2(_tensor([1, 28, 28])), JSON),
        Bad("v2 unknown model metadata", "GET", "/v2/models/%00%ff", 404),
        Bad("v2 body not json", "POST", INFER, 400, None, b"\x00\x01", JSON),
        Bad("v2 body a list", "POST", INFER, 400, None, b"[]", JSON),
        Bad("v2 no inputs", "POST", INFER, 400, None, b'{"outputs": []}', JSON),
        Bad("v2 two inputs", "POST", INFER, 400, None,
            b'{"inputs": [' + b",".join([_v2(_tensor([1, 28, 28]))[11:-2]] * 2) + b"]}", JSON),
        Bad("v2 empty tensor", "POST", INFER, 400, None, _v2({"data": [], "datatype": "FP32", "name": "", "shape": []}),
            JSON),
        Bad("v2 datatype INT64", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], "INT64")), JSON),
        Bad("v2 rgb shape", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28, 3], "FP32")), JSON),
        Bad("v2 zero batch", "POST", INFER, 400, None, _v2(_tensor([0, 28, 28])), JSON),
        Bad("v2 negative batch", "POST", INFER, 400, None, _v2(_tensor([-5, 28, 28], "FP32")), JSON),
        Bad("v2 shape of strings", "POST", INFER, 400, None, _v2(_tensor(["1", 28, 28], data=[])), JSON),
        Bad("v2 too few values", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], data=[0] * 783)), JSON),
        Bad("v2 uint8 out of range", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], data=[300] * 784)), JSON),
        Bad("v2 uint8 fractions", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], data=[0.5] * 784)), JSON),
        Bad("v2 fp32 null", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28, 1], "FP32", [None] * 784)), JSON),
        Bad("v2 data strings", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], data=[["x"]])), JSON),
        Bad("v2 oversize batch 65", "POST", INFER, 413, None, _v2(_tensor([65, 28, 28])), JSON),
        Bad("v2 unknown output", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28]), outputs=[{"name": "logits"}]), JSON),
        Bad("v2 unknown tensor key", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], colour="red")), JSON),
        Bad("v2 output null", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28]), outputs=[None]), JSON),
        Bad("v2 binary_data null", "POST", INFER, 400, None,
            _v2(_tensor([1, 28, 28]), outputs=[{"name": "probabilities", "parameters": {"binary_data": None}}]), JSON),
        Bad("v2 datatype an object", "POST", INFER, 400, None, _v2(_tensor([1, 28, 28], {"x": 1})), JSON),
        Bad("v2 binary_data_output not bool", "POST", INFER, 400, None,
            _v2(_tensor([1, 28, 28]), parameters={"binary_data_output": "yes"}), JSON),
        # v2 binary tensor data extension
        Bad("v2 binary header length not a number", "POST", INFER, 400, None, *_binary(binary_ok, bytes(784), "ten")),
        Bad("v2 binary header length past the body", "POST", INFER, 400, None, *_binary(binary_ok, b"", "99999")),
        Bad("v2 binary size wrong", "POST", INFER, 400, None,
            *_binary({"inputs": [{**binary_ok["inputs"][0], "parameters": {"binary_data_size": 100}}]}, bytes(100))),
        Bad("v2 binary bytes missing", "POST", INFER, 400, None, *_binary(binary_ok, bytes(700))),
        Bad("v2 bytes without binary_data_size", "POST", INFER, 400, None,
            *_binary({"inputs": [_tensor([1, 28, 28])]}, bytes(784))),
        Bad("v2 data and binary_data_size", "POST", INFER, 400, None,
            *_binary({"inputs": [{**_tensor([1, 28, 28]), "parameters": {"binary_data_size": 784}}]}, bytes(784))),
        # tokens (a server with a token set)
        Bad("no token", "POST", "/v1/predict", 401, "unauthorized", png, PNG_TYPE, token=""),
        Bad("wrong token", "GET", "/v1/models", 401, "unauthorized", token="Bearer wrong"),
        Bad("basic auth instead of bearer", "GET", "/v1/models", 401, "unauthorized", token="Basic dXNlcjpwYXNz"),
        Bad("v2 without token", "POST", INFER, 401, None, _v2(_tensor([1, 28, 28])), JSON, token=""),
        Bad("feedback without token", "POST", "/v1/feedback", 401, "unauthorized", _feedback(b64png), JSON, token=""),
        Bad("feedback stats without token", "GET", "/v1/feedback", 401, "unauthorized", token=""),
        # whole requests on a socket: the ones that reach Flask answer in JSON, the rest come from the WSGI server
        Bad("content-length shorter than the body", "POST", "/v1/predict", 400, "bad_image",
            raw=_raw("POST /v1/predict HTTP/1.1", [b"Host: x", b"Content-Type: image/png",
                                                   b"Content-Length: 40", b"Connection: close"], png)),
        # The client stops short of its Content-Length and closes: there is no request to answer, so no answer.
        Bad("content-length longer than the body", "POST", "/v1/predict", 0, layer="wsgi",
            raw=_raw("POST /v1/predict HTTP/1.1", [b"Host: x", b"Content-Type: image/png",
                                                   f"Content-Length: {len(png) + 500}".encode()], png)),
        Bad("content-length not a number", "POST", "/v1/predict", 400, layer="wsgi",
            raw=_raw("POST /v1/predict HTTP/1.1", [b"Host: x", b"Content-Type: image/png", b"Content-Length: lots"], png)),
        Bad("nul byte in a header", "GET", "/v1/models", 400, layer="wsgi",
            raw=_raw("GET /v1/models HTTP/1.1", [b"Host: x", b"X-Note: a\x00b"])),
        Bad("header line without a colon", "GET", "/v1/models", 400, layer="wsgi",
            raw=_raw("GET /v1/models HTTP/1.1", [b"Host: x", b"this is no header"])),
        Bad("chunked body with a bad chunk size", "POST", "/v1/predict", 400, layer="wsgi",
            raw=_raw("POST /v1/predict HTTP/1.1", [b"Host: x", b"Content-Type: image/png",
                                                   b"Transfer-Encoding: chunked"], b"zz\r\nabc\r\n0\r\n\r\n")),
        Bad("content-length far over the limit", "POST", "/v1/predict", 413, layer="wsgi",
            raw=_raw("POST /v1/predict HTTP/1.1", [b"Host: x", b"Content-Type: image/png",
                                                   f"Content-Length: {40 * BODY_LIMIT}".encode()])),
    ]
    return rows
