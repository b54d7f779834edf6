"""The v1 JSON API: /v1/predict (one image or a batch), /v1/compare (every model), /v1/models."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from flask import Blueprint, request

from mnist_edge.runtime.api import jsonio
from mnist_edge.runtime.answers import Answers
from mnist_edge.runtime.encode import encoded
from mnist_edge.runtime.errors import (
    ImageDecodeError, MalformedRequestError, MnistEdgeError, ModelLoadError, PayloadTooLargeError,
    UnknownParameterError, UnsupportedMediaError,
)
from mnist_edge.runtime.api.inference import ms, run_model
from mnist_edge.runtime.preprocess import MAX_PIXELS, normalize, preprocess
from mnist_edge.runtime.registry import ModelSlot
from mnist_edge.runtime.api.state import state

bp = Blueprint("v1", __name__, url_prefix="/v1")

ACCEPTED = "multipart/form-data (field `file`), image/* or application/octet-stream, or application/json"
UPLOAD_FIELDS = ("file", "image")  # multipart file fields an image may come in
PREDICT_OPTIONS = ("backend", "return_image")
COMPARE_OPTIONS = ("return_image",)  # every loaded model answers, so no backend
TRUE = ("1", "true", "yes", "on")


@dataclass
class Inputs:
    """A request's images, preprocessed, and its options."""

    batch: np.ndarray  # float32 N x 28 x 28 x 1
    is_batch: bool
    backend: str | None
    return_image: bool
    preprocess_ms: float


def b64_image(value: object) -> bytes:
    """Base64 text or a data: URL -> bytes."""
    if not isinstance(value, str) or not value:
        raise MalformedRequestError("`image` must be a non-empty base64 string (PNG/JPEG, or a data: URL)")
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if not header.endswith(";base64"):
            raise MalformedRequestError("a data: URL in `image` must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"`image` is not valid base64 ({exc})") from None


def _pixels(value: object, max_pixels: int) -> np.ndarray:
    """A JSON list of rows (0-255 or 0-1) -> float32 array, checked before preprocessing."""
    try:
        pixels = np.asarray(value, dtype=np.float64)  # JSON's own width: 1e300 stays finite and is refused below
    except (ValueError, TypeError):
        raise MalformedRequestError("`pixels` must be a rectangular list of rows of numbers") from None
    if pixels.ndim not in (2, 3) or pixels.size == 0:
        raise ImageDecodeError(f"`pixels` must be non-empty H x W (or H x W x C) rows, got shape {list(pixels.shape)}",
                               shape=list(pixels.shape))
    if pixels.size > max_pixels:
        raise PayloadTooLargeError(f"`pixels` holds {pixels.size:,} values; the limit is {max_pixels:,}", limit=max_pixels)
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise ImageDecodeError("`pixels` must lie in 0-255 (or 0-1)")
    return pixels.astype(np.float32)


def _item(item: object, max_pixels: int) -> np.ndarray:
    """One JSON input object, {"image": ...} or {"pixels": ...}, -> float32 28 x 28 x 1."""
    if not isinstance(item, dict):
        raise MalformedRequestError("each input must be an object with `image` or `pixels`")
    reject_unknown("JSON key", item, ("image", "pixels"))
    if len(item) != 1:
        raise MalformedRequestError("send one of `image` (base64 PNG/JPEG) or `pixels` (rows of numbers), "
                                    f"not {len(item)}")
    if "image" in item:
        return preprocess(b64_image(item["image"]), max_pixels=max_pixels)[0]
    return normalize(_pixels(item["pixels"], max_pixels))


def reject_unknown(kind: str, given: Iterable[str], valid: tuple[str, ...]) -> None:
    """A 400 naming every parameter the route does not take, and the ones it does."""
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise UnknownParameterError(kind, unknown, valid)


def _json_items(options: dict, valid: tuple[str, ...]) -> tuple[list[object], bool]:
    body = jsonio.parse(request.get_data(cache=False))
    if not isinstance(body, dict):
        raise MalformedRequestError("the body is JSON but not an object: send {\"image\": ...}, {\"pixels\": ...} "
                                    "or {\"instances\": [...]}")
    reject_unknown("JSON key", body, valid + ("image", "pixels", "instances"))
    for key in options:
        if options[key] is None and body.get(key) is not None:
            options[key] = body[key]
    if "instances" not in body:
        return [{key: body[key] for key in ("image", "pixels") if key in body}], False
    if "image" in body or "pixels" in body:
        raise MalformedRequestError("send `instances` or one image (`image` or `pixels`), not both")
    instances, limit = body["instances"], state().config.max_batch
    if not isinstance(instances, list) or not instances:
        raise MalformedRequestError("`instances` must be a non-empty list of {image|pixels} objects")
    if len(instances) > limit:
        raise PayloadTooLargeError(f"{len(instances)} instances; the batch limit is {limit}", limit=limit)
    return instances, True


def read_inputs(valid: tuple[str, ...]) -> Inputs:
    """Whatever the request carries (upload, raw image, JSON) -> one preprocessed batch and the options in `valid`."""
    reject_unknown("query parameter", request.args, valid)
    options = {"backend": request.args.get("backend"), "return_image": request.args.get("return_image")}
    mimetype = request.mimetype
    if request.is_json:
        items, is_batch = _json_items(options, valid)
    elif mimetype == "multipart/form-data":
        reject_unknown("form field", request.form, valid)
        reject_unknown("file field", request.files, UPLOAD_FIELDS)
        upload = request.files.get("file") or request.files.get("image")
        if upload is None:
            raise MalformedRequestError("the multipart upload has no `file` (or `image`) field")
        for key in options:
            options[key] = options[key] if options[key] is not None else request.form.get(key)
        items, is_batch = [upload.read()], False
    elif mimetype.startswith("image/") or mimetype == "application/octet-stream":
        items, is_batch = [request.get_data(cache=False)], False
    else:
        raise UnsupportedMediaError(f"Content-Type {mimetype or '(none)'} is not taken; send {ACCEPTED}",
                                    content_type=mimetype or None)
    backend = options["backend"]
    if backend is not None and not isinstance(backend, str):
        raise MalformedRequestError("`backend` must be a model name (a string)")
    flag = options["return_image"]
    return_image = flag is True or (isinstance(flag, str) and flag.lower() in TRUE)
    max_pixels = state().config.max_image_pixels or MAX_PIXELS
    started = time.perf_counter()
    images = []
    for index, item in enumerate(items):
        try:
            images.append(preprocess(item, max_pixels=max_pixels)[0] if isinstance(item, bytes) else
                          _item(item, max_pixels))
        except MnistEdgeError as exc:
            if is_batch:
                exc.message = f"instances[{index}]: {exc.message}"
                exc.details["instance"] = index
            raise
    return Inputs(np.stack(images), is_batch, backend, return_image, ms(time.perf_counter() - started))


def result(found: Answers, index: int) -> dict:
    """One image's answer: its digit, the ten probabilities, and whether it is a digit at all."""
    probs = found.probabilities[index]
    digit = int(np.argmax(probs))
    return {"digit": digit, "confidence": round(float(probs[digit]), 6),
            "probabilities": [round(float(p), 6) for p in probs],
            "is_digit": bool(found.is_digit[index]), "digit_score": round(float(found.digit_score[index]), 6)}


def png_base64(image: np.ndarray) -> str:
    """A 28 x 28 x 1 float image as base64 PNG: what the model saw, white ink on black."""
    return base64.b64encode(encoded(np.round(image[:, :, 0] * 255).astype(np.uint8))).decode("ascii")


def _model_fields(slot: ModelSlot) -> dict:
    return {"backend": slot.name, "format": slot.entry.get("format"), "precision": slot.entry.get("precision")}


@bp.post("/predict")
def predict() -> dict:
    """Classify one image, or a JSON batch under `instances` in one predict call."""
    started = time.perf_counter()
    inputs = read_inputs(PREDICT_OPTIONS)
    slot = state().registry.get(inputs.backend)
    found, inference_ms = run_model(slot, inputs.batch)
    items = [result(found, i) for i in range(len(inputs.batch))]
    if inputs.return_image:
        for item, image in zip(items, inputs.batch):
            item["image"] = png_base64(image)
    body = {"predictions": items} if inputs.is_batch else items[0]
    timings = {"preprocess": inputs.preprocess_ms, "inference": inference_ms, "total": ms(time.perf_counter() - started)}
    return {**body, **_model_fields(slot), "timings_ms": timings}


@bp.post("/compare")
def compare() -> dict:
    """Run one image through every loaded model, each with its answer and inference time."""
    started = time.perf_counter()
    inputs = read_inputs(COMPARE_OPTIONS)
    if inputs.is_batch:
        raise MalformedRequestError("/v1/compare takes one image, not `instances`")
    slots = state().registry.loaded()
    if not slots:
        raise ModelLoadError("no model is loaded")
    results = []
    for slot in slots:
        found, inference_ms = run_model(slot, inputs.batch)
        results.append({**_model_fields(slot), **result(found, 0), "inference_ms": inference_ms})
    # Agreeing means the same answer a person would read: the same digit, or all saying it is none.
    body = {"results": results, "agree": len({r["digit"] if r["is_digit"] else None for r in results}) == 1}
    if inputs.return_image:
        body["image"] = png_base64(inputs.batch[0])
    body["timings_ms"] = {"preprocess": inputs.preprocess_ms, "total": ms(time.perf_counter() - started)}
    return body


@bp.get("/models")
def models() -> dict:
    """Every configured model, loaded or not (with the reason), its manifest figures and what runs it."""
    reject_unknown("query parameter", request.args, ())
    registry = state().registry
    described = []
    for name, slot in registry.slots.items():
        entry, info = slot.entry, slot.info
        described.append({
            "name": name, "format": entry.get("format"), "precision": entry.get("precision"),
            "file": entry.get("file"), "size_bytes": entry.get("size_bytes"), "sha256": entry.get("sha256"),
            "accuracy": entry.get("accuracy"), "digit_threshold": slot.threshold if slot.loaded else None,
            "loaded": slot.loaded, "error": slot.error,
            "default": name == registry.default, "providers": info.get("providers"),
            "inputs": info.get("inputs", entry.get("inputs", [])), "outputs": info.get("outputs", entry.get("outputs", [])),
        })
    return {"default": registry.default, "models": described}
