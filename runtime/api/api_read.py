"""POST /v1/read: a handwritten number in one image -> its digits, left to right, each with its box and answer."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from flask import Blueprint

from mnist_edge.runtime.api.api_v1 import PREDICT_OPTIONS, model_fields, png_base64, result
from mnist_edge.runtime.api.bodies import image_of, read_body
from mnist_edge.runtime.api.inference import ms, run_model
from mnist_edge.runtime.api.state import state
from mnist_edge.runtime.errors import PayloadTooLargeError
from mnist_edge.runtime.preprocess import MAX_PIXELS, find_ink, normalize
from mnist_edge.runtime.segment import IN_A_NUMBER, choose, segment

bp = Blueprint("read", __name__, url_prefix="/v1")


def _box(box: tuple[int, int, int, int], scale: tuple[float, float], shape: tuple[int, ...]) -> list[int]:
    """A box in the ink's pixels -> [x, y, w, h] in the image's (a photo's ink may be reduced), inside the image."""
    (x, y, w, h), (sy, sx), (height, width) = box, scale, shape[:2]
    left, top = min(int(x * sx), width - 1), min(int(y * sy), height - 1)
    right, bottom = min(int(np.ceil((x + w) * sx)), width), min(int(np.ceil((y + h) * sy)), height)
    return [left, top, max(1, right - left), max(1, bottom - top)]


@bp.post("/read")
def read() -> dict:
    """Read one line of handwriting: every character found, in reading order, and the digits among them as `number`."""
    started = time.perf_counter()
    body = read_body(PREDICT_OPTIONS, batch=False)
    config = state().config
    image = image_of(body.items[0], config.max_image_pixels or MAX_PIXELS)
    ink = find_ink(image, line=True)
    limit = config.max_digits
    # More characters than the limit are refused before the model runs; one character is read as /v1/predict reads it.
    found = segment(ink, limit=limit, single=lambda: normalize(image))
    batch = np.stack([piece.image for piece in found.pieces])
    preprocess_ms = ms(time.perf_counter() - started)
    slot = state().registry.get(body.backend)
    answers, inference_ms = run_model(slot, batch)  # every candidate of every character in one call
    chosen = choose(found, answers.probabilities.max(axis=1) * answers.digit_score)
    if len(chosen) > limit:
        raise PayloadTooLargeError(f"the image holds {len(chosen)} characters; the limit is {limit}", limit=limit)
    if len(chosen) > 1:  # among other characters, a mark is more likely a digit than a drawing alone is
        answers = replace(answers, is_digit=answers.digit_score >= min(slot.threshold, IN_A_NUMBER))
    scale = (image.shape[0] / ink.shape[0], image.shape[1] / ink.shape[1])
    digits = []
    for index in chosen:
        answer = result(answers, index)
        item = {key: answer[key] for key in ("digit", "confidence", "is_digit", "digit_score")}
        item["box"] = _box(found.pieces[index].box, scale, image.shape)
        item["probabilities"] = answer["probabilities"]
        if body.return_image:
            item["image"] = png_base64(found.pieces[index].image)
        digits.append(item)
    number = "".join(str(item["digit"]) for item in digits if item["is_digit"])
    timings = {"preprocess": preprocess_ms, "inference": inference_ms, "total": ms(time.perf_counter() - started)}
    return {"number": number, "digits": digits, **model_fields(slot), "timings_ms": timings}
