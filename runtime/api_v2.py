"""The Open Inference Protocol (KServe v2) subset over HTTP/JSON: health, metadata and infer."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, request

from mnist_edge import __version__
from mnist_edge.runtime.api_v1 import run_model
from mnist_edge.runtime.errors import MalformedRequestError, PayloadTooLargeError, UnknownNameError
from mnist_edge.runtime.preprocess import scale_pixels
from mnist_edge.runtime.registry import ModelSlot
from mnist_edge.runtime.state import state

bp = Blueprint("v2", __name__, url_prefix="/v2")

# Triton's platform names where one exists; the rest follow its <runtime>_<format> pattern.
PLATFORMS = {"onnx": "onnxruntime_onnx", "tflite": "litert_tflite", "keras": "tensorflow_keras"}
INPUT = {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]}  # UINT8 [-1, 28, 28] is taken too
OUTPUT = {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
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
    """Server name, version and protocol extensions (none)."""
    return {"name": "mnist-edge", "version": __version__, "extensions": []}


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
            "inputs": [INPUT], "outputs": [OUTPUT]}


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> tuple[dict, int]:
    """200 when the model is loaded, 400 when it failed to load."""
    slot = _slot(name, version)
    return {"name": name, "ready": slot.loaded}, 200 if slot.loaded else 400


def _tensor(body: object) -> np.ndarray:
    """The request's one input tensor -> float32 N x 28 x 28 x 1."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise MalformedRequestError("the body must be a JSON object with an `inputs` list")
    if len(body["inputs"]) != 1 or not isinstance(body["inputs"][0], dict):
        raise MalformedRequestError(f"expected exactly one input tensor ({INPUT['name']}), got {len(body['inputs'])}")
    tensor = body["inputs"][0]
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if not isinstance(tensor.get("name"), str):
        raise MalformedRequestError("the input tensor needs a `name`")
    if datatype not in ("FP32", "UINT8"):
        raise MalformedRequestError(f"datatype {datatype!r} is not taken: FP32 (N x 28 x 28 x 1, 0-1) or UINT8 (N x 28 x 28)")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or len(shape) < 3 or shape[1:] not in IMAGE_SHAPES or shape[0] < 1):
        raise MalformedRequestError(f"shape {shape!r} is not taken: [N, 28, 28, 1] or [N, 28, 28] with N >= 1")
    limit = state().config.max_batch
    if shape[0] > limit:
        raise PayloadTooLargeError(f"a batch of {shape[0]}; the limit is {limit}")
    try:
        data = np.asarray(tensor.get("data"), dtype=np.float64)
    except (ValueError, TypeError):
        raise MalformedRequestError("`data` must be a flat or nested list of numbers") from None
    if data.size != int(np.prod(shape)):
        raise MalformedRequestError(f"`data` holds {data.size} values; shape {shape} needs {int(np.prod(shape))}")
    if not np.isfinite(data).all():
        raise MalformedRequestError("`data` contains NaN, infinity or null")
    if datatype == "UINT8":
        if (data < 0).any() or (data > 255).any() or (data != np.round(data)).any():
            raise MalformedRequestError("UINT8 `data` must be whole numbers 0-255")
        return scale_pixels(data.reshape(shape[0], 28, 28))
    return data.astype(np.float32).reshape(shape[0], 28, 28, 1)


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> dict:
    """Run an inference request as the protocol defines it; the input is used as is (no preprocessing)."""
    slot = _slot(name, version)
    body = request.get_json(force=True, silent=True)  # clients do not all send a JSON Content-Type
    if request.headers.get("Inference-Header-Content-Length"):
        raise MalformedRequestError("the binary tensor data extension is not supported; send JSON `data`")
    batch = _tensor(body)
    for key, kind in (("id", str), ("parameters", dict), ("outputs", list)):
        if key in body and not isinstance(body[key], kind):
            raise MalformedRequestError(f"`{key}` must be a {kind.__name__}")
    wanted = [out.get("name") if isinstance(out, dict) else out for out in body.get("outputs", [])]
    if any(w != OUTPUT["name"] for w in wanted):
        raise MalformedRequestError(f"unknown output(s) {wanted}; this model has `{OUTPUT['name']}`")
    slot = state().registry.get(name)  # 503 when it failed to load
    probs, _ = run_model(slot, batch)
    answer = {"model_name": name, "model_version": model_version(slot)}
    if "id" in body:
        answer["id"] = body["id"]
    answer["outputs"] = [{"name": OUTPUT["name"], "shape": list(probs.shape), "datatype": "FP32",
                          "data": probs.ravel().tolist()}]
    return answer
