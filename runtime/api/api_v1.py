"""The v1 JSON API: /v1/predict (one image or a batch), /v1/compare (every model), /v1/models."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import numpy as np
from flask import Blueprint, request

from mnist_edge.runtime.answers import Answers
from mnist_edge.runtime.api.bodies import image_of, read_body, reject_unknown
from mnist_edge.runtime.encode import encoded
from mnist_edge.runtime.errors import MalformedRequestError, MnistEdgeError, ModelLoadError
from mnist_edge.runtime.api.inference import ms, run_model
from mnist_edge.runtime.preprocess import MAX_PIXELS, normalize
from mnist_edge.runtime.registry import ModelSlot
from mnist_edge.runtime.api.state import state

bp = Blueprint("v1", __name__, url_prefix="/v1")

PREDICT_OPTIONS = ("backend", "return_image")
COMPARE_OPTIONS = ("return_image",)  # every loaded model answers, so no backend


@dataclass
class Inputs:
    """A request's images, preprocessed, and its options."""

    batch: np.ndarray  # float32 N x 28 x 28 x 1
    is_batch: bool
    backend: str | None
    return_image: bool
    preprocess_ms: float


def read_inputs(valid: tuple[str, ...]) -> Inputs:
    """Whatever the request carries (upload, raw image, JSON) -> one preprocessed batch and the options in `valid`."""
    body = read_body(valid)
    max_pixels = state().config.max_image_pixels or MAX_PIXELS
    started = time.perf_counter()
    images = []
    for index, item in enumerate(body.items):
        try:
            images.append(normalize(image_of(item, max_pixels)))
        except MnistEdgeError as exc:
            if body.is_batch:
                exc.message = f"instances[{index}]: {exc.message}"
                exc.details["instance"] = index
            raise
    return Inputs(np.stack(images), body.is_batch, body.backend, body.return_image, ms(time.perf_counter() - started))


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


def model_fields(slot: ModelSlot) -> dict:
    """The answering model: its name, format and precision."""
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
    return {**body, **model_fields(slot), "timings_ms": timings}


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
        results.append({**model_fields(slot), **result(found, 0), "inference_ms": inference_ms})
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
