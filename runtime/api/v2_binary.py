"""The Open Inference Protocol's binary tensor data extension: a JSON header, then raw little-endian tensor bytes.

A request says how long its JSON header is in the `Inference-Header-Content-Length` header; each binary input names its
byte count in `parameters.binary_data_size` and has no `data`, and the bytes follow the JSON in input order. Outputs
asked for with `parameters.binary_data` (or the request's `parameters.binary_data_output`) come back the same way.
"""

from __future__ import annotations

import math

import numpy as np
from flask import Response, current_app

from mnist_edge.runtime.api import jsonio
from mnist_edge.runtime.errors import MalformedRequestError

HEADER = "Inference-Header-Content-Length"
EXTENSION = "binary_tensor_data"  # its name in GET /v2 `extensions`
CONTENT_TYPE = "application/octet-stream"  # what Triton answers with when any output is binary
DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}


def split(body: bytes, header_length: str | None) -> tuple[memoryview, memoryview]:
    """A request body -> (the JSON header, the tensor bytes after it); without the HTTP header it is all JSON."""
    view = memoryview(body)
    if header_length is None:
        return view, view[:0]
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > len(body):
        raise MalformedRequestError(f"{HEADER} must be the JSON header's length in bytes, 0 to the body's "
                                    f"{len(body)}; got {header_length!r}")
    return view[:int(text)], view[int(text):]


def decode(tail: memoryview, *, name: str, size: object, shape: list[int], datatype: str) -> np.ndarray:
    """The one input's `binary_data_size` bytes -> a flat array of its datatype, every byte count checked."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedRequestError(f"input `{name}`: binary_data_size must be a whole number of bytes, got {size!r}")
    dtype = DTYPES[datatype]
    needed = math.prod(shape) * dtype.itemsize
    if size != needed:
        raise MalformedRequestError(f"input `{name}`: binary_data_size is {size} bytes, but shape {shape} of {datatype} "
                                    f"({dtype.itemsize} byte{'s' if dtype.itemsize > 1 else ''} each) is {needed}")
    if len(tail) != size:
        raise MalformedRequestError(f"input `{name}` declares {size} bytes of binary data, but {len(tail)} follow "
                                    f"the JSON header (is {HEADER} right?)")
    return np.frombuffer(tail, dtype=dtype)


def wants_binary(request_parameters: dict, output: dict | None) -> bool:
    """Whether an output goes back as binary: its own `binary_data`, else the request's `binary_data_output`."""
    parameters = (output or {}).get("parameters", {})
    # Present but null is a wrong type, not "unset": only a missing key falls back to the request's choice.
    chosen = parameters["binary_data"] if "binary_data" in parameters else request_parameters.get("binary_data_output", False)
    if not isinstance(chosen, bool):
        raise MalformedRequestError(f"binary_data and binary_data_output must be true or false, got {chosen!r}")
    return chosen


def tensor_bytes(array: np.ndarray) -> bytes:
    """An FP32 output as the extension sends it: little-endian, row-major, no padding."""
    return np.ascontiguousarray(array, dtype=DTYPES["FP32"]).tobytes()


def response(answer: dict, blobs: list[bytes]) -> Response:
    """The JSON answer, then the binary outputs' bytes in output order, with the header's length in HEADER."""
    header = jsonio.dump(answer)
    reply = current_app.response_class(b"".join([header, *blobs]), content_type=CONTENT_TYPE)
    reply.headers[HEADER] = str(len(header))
    return reply
