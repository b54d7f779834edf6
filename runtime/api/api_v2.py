"""The Open Inference Protocol (KServe v2) subset over HTTP/JSON: health, metadata and infer."""

from __future__ import annotations

import math

import numpy as np
from flask import Blueprint, Response, request

from mnist_edge import __version__
from mnist_edge.runtime import answers
from mnist_edge.runtime.api import jsonio, v2_binary
from mnist_edge.runtime.errors import MalformedRequestError, PayloadTooLargeError, UnknownNameError
from mnist_edge.runtime.api.inference import run_model
from mnist_edge.runtime.preprocess import scale_pixels
from mnist_edge.runtime.registry import ModelSlot
from mnist_edge.runtime.api.state import state

bp = Blueprint("v2", __name__, url_prefix="/v2")

# Triton's platform names where one exists; the rest follow its <runtime>_<format> pattern.
PLATFORMS = {"onnx": "onnxruntime_onnx", "tflite": "litert_tflite", "keras": "tensorflow_keras"}
INPUT = {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]}  # UINT8 [-1, 28, 28] is taken too
# The ten digit probabilities, and the digit score beside them: below the model's digit_threshold in /v1/models it
# is no digit.
OUTPUTS = tuple({"name": o["name"], "datatype": "FP32", "shape": o["shape"]} for o in answers.OUTPUTS)
OUTPUT_NAMES = tuple(o["name"] for o in OUTPUTS)
IMAGE_SHAPES = ([28, 28], [28, 28, 1])


def model_version(slot: ModelSlot) -> str:
    """A model's one version: the start of its file's sha256, so a new model is a new version."""
    return (slot.entry.get("sha256") or "1")[:12]


def _slot(name: str, version: str | None) -> ModelSlot:
    slots = state().registry.slots
    if name not in slots:
        raise UnknownNameError("model", name, list(slots))
    slot = slots[name]
    if version is not None and version != model_version(slot):
        raise UnknownNameError(f"version of model {name}", version, [model_version(slot)])
    return slot


@bp.get("")
def server_metadata() -> dict:
    """Server name, version and the protocol extensions it speaks."""
    return {"name": "mnist-edge", "version": __version__, "extensions": [v2_binary.EXTENSION]}


@bp.get("/health/live")
def live() -> dict:
    """The server answers."""
    return {"live": True}


@bp.get("/health/ready")
def ready() -> tuple[dict, int]:
    """Per the protocol, ready when every configured model is; 400 (the protocol's false) otherwise."""
    slots = state().registry.slots.values()
    is_ready = bool(slots) and all(slot.loaded for slot in slots)
    return {"ready": is_ready}, 200 if is_ready else 400


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> dict:
    """A model's name, versions, platform and the tensors /infer takes and returns."""
    slot = _slot(name, version)
    return {"name": name, "versions": [model_version(slot)], "platform": PLATFORMS.get(slot.entry.get("format"), "unknown"),
            "inputs": [INPUT], "outputs": list(OUTPUTS)}


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> tuple[dict, int]:
    """200 when the model is loaded, 400 when it failed to load."""
    slot = _slot(name, version)
    return {"name": name, "ready": slot.loaded}, 200 if slot.loaded else 400


TENSOR_KEYS = ("name", "shape", "datatype", "parameters", "data")  # the protocol's request input, all of it
INPUT_PARAMETERS = ("binary_data_size",)
OUTPUT_PARAMETERS = ("binary_data",)


def _parameters(item: dict, valid: tuple[str, ...], what: str) -> dict:
    parameters = item.get("parameters", {})
    if not isinstance(parameters, dict):
        raise MalformedRequestError(f"{what} `parameters` must be an object")
    unknown = sorted(set(parameters) - set(valid))
    if unknown:
        raise MalformedRequestError(f"{what} parameter(s) {unknown} are not supported; valid: {', '.join(valid)}")
    return parameters


def _json_data(tensor: dict, shape: list[int], datatype: str) -> np.ndarray:
    """The `data` list -> a flat array, checked for count and range."""
    try:
        data = np.asarray(tensor.get("data"), dtype=np.float64).ravel()
    except (ValueError, TypeError):
        raise MalformedRequestError("`data` must be a flat or nested list of numbers") from None
    if data.size != math.prod(shape):
        raise MalformedRequestError(f"`data` holds {data.size} values; shape {shape} needs {math.prod(shape)}")
    if datatype == "UINT8" and ((data < 0).any() or (data > 255).any() or (data != np.round(data)).any()):
        raise MalformedRequestError("UINT8 `data` must be whole numbers 0-255")
    return data


def _whole(shape: object) -> object:
    """A shape with JSON's whole-number floats (28.0: an integer to JSON Schema) as ints; anything else as given."""
    if not isinstance(shape, list):
        return shape
    return [int(d) if isinstance(d, float) and d.is_integer() and abs(d) < 2**53 else d for d in shape]


def _tensor(body: dict, tail: memoryview) -> np.ndarray:
    """The request's one input tensor (JSON `data` or binary bytes after the header) -> float32 N x 28 x 28 x 1."""
    if not isinstance(body.get("inputs"), list):
        raise MalformedRequestError("the body must be a JSON object with an `inputs` list")
    if len(body["inputs"]) != 1 or not isinstance(body["inputs"][0], dict):
        raise MalformedRequestError(f"expected exactly one input tensor ({INPUT['name']}), got {len(body['inputs'])}")
    tensor = body["inputs"][0]
    unknown = sorted(set(tensor) - set(TENSOR_KEYS))
    if unknown:
        raise MalformedRequestError(f"input key(s) {unknown} are not part of a tensor; valid: {', '.join(TENSOR_KEYS)}")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), _whole(tensor.get("shape"))
    if not isinstance(name, str):
        raise MalformedRequestError("the input tensor needs a `name`")
    if not isinstance(datatype, str) or datatype not in v2_binary.DTYPES:
        raise MalformedRequestError(f"datatype {datatype!r} is not taken: FP32 (N x 28 x 28 x 1, 0-1) or UINT8 (N x 28 x 28)")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or len(shape) < 3 or shape[1:] not in IMAGE_SHAPES or shape[0] < 1):
        raise MalformedRequestError(f"shape {shape!r} is not taken: [N, 28, 28, 1] or [N, 28, 28] with N >= 1")
    limit = state().config.max_batch
    if shape[0] > limit:
        raise PayloadTooLargeError(f"a batch of {shape[0]}; the limit is {limit}")
    size = _parameters(tensor, INPUT_PARAMETERS, "input").get("binary_data_size")
    if size is None and tail:
        raise MalformedRequestError(f"{len(tail)} bytes follow the JSON header, but the input has no binary_data_size")
    if size is not None and "data" in tensor:
        raise MalformedRequestError("the input has both `data` and binary_data_size; send one")
    if size is None:
        data = _json_data(tensor, shape, datatype)
    else:
        data = v2_binary.decode(tail, name=name, size=size, shape=shape, datatype=datatype)
    if datatype == "UINT8":
        return scale_pixels(data.reshape(shape[0], 28, 28))
    if not np.isfinite(data).all():
        raise MalformedRequestError("`data` contains NaN, infinity or null")
    return data.astype(np.float32, copy=False).reshape(shape[0], 28, 28, 1)


def _outputs(body: dict) -> list[tuple[str, bool]]:
    """The outputs to send, in the order asked (all of them when none is named), and whether each goes as binary."""
    for key, kind in (("id", str), ("parameters", dict), ("outputs", list)):
        if key in body and not isinstance(body[key], kind):
            raise MalformedRequestError(f"`{key}` must be a {kind.__name__}")
    request_parameters = body.get("parameters", {})
    wanted = body.get("outputs") or [{"name": name} for name in OUTPUT_NAMES]
    if len(wanted) > len(OUTPUT_NAMES):
        raise MalformedRequestError(f"{len(wanted)} outputs requested; this model has {len(OUTPUT_NAMES)}: "
                                    f"{', '.join(OUTPUT_NAMES)}")
    chosen = []
    for output in wanted:
        if not isinstance(output, dict) or output.get("name") not in OUTPUT_NAMES:
            raise MalformedRequestError(f"unknown output {output!r}; this model has {', '.join(OUTPUT_NAMES)}")
        _parameters(output, OUTPUT_PARAMETERS, "output")
        chosen.append((output["name"], v2_binary.wants_binary(request_parameters, output)))
    return chosen


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> dict | Response:
    """Run an inference request as the protocol defines it, in JSON or with binary tensors; the input is used as is."""
    slot = _slot(name, version)
    header, tail = v2_binary.split(request.get_data(cache=False), request.headers.get(v2_binary.HEADER))
    body = jsonio.parse(header)  # clients do not all send a JSON Content-Type, so none is required
    if not isinstance(body, dict):
        raise MalformedRequestError("the JSON header must be an object with an `inputs` list")
    batch = _tensor(body, tail)
    wanted = _outputs(body)
    slot = state().registry.get(name)  # 503 when it failed to load
    found, _ = run_model(slot, batch)
    tensors = {"probabilities": found.probabilities, "digit_score": found.digit_score.reshape(-1, 1)}
    answer = {"model_name": name, "model_version": model_version(slot)}
    if "id" in body:
        answer["id"] = body["id"]
    outputs, blobs = [], []
    for output_name, binary in wanted:
        values = tensors[output_name]
        output = {"name": output_name, "shape": list(values.shape), "datatype": "FP32"}
        if binary:
            blobs.append(v2_binary.tensor_bytes(values))
            output["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            output["data"] = values.ravel()
        outputs.append(output)
    answer["outputs"] = outputs
    return v2_binary.response(answer, blobs) if blobs else answer
