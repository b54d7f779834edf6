"""POST /v1/feedback stores a correction (a drawing and what it really was); GET /v1/feedback counts them."""

from __future__ import annotations

from flask import Blueprint, request

from mnist_edge.runtime.api import jsonio
from mnist_edge.runtime.api.bodies import b64_image, reject_unknown
from mnist_edge.runtime.api.state import state
from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.errors import HttpError, MalformedRequestError, PayloadTooLargeError, UnsupportedMediaError
from mnist_edge.runtime.feedback import FeedbackStore, check_label, check_png
from mnist_edge.runtime.preprocess import MAX_PIXELS

bp = Blueprint("feedback", __name__, url_prefix="/v1")

FIELDS = ("image", "label", "answer")
MAX_ANSWER_BYTES = 16 * 1024  # what the UI was shown: a predict answer is ~400 bytes; more is not an answer


def _store() -> FeedbackStore:
    store = state().feedback
    if store is None:
        raise HttpError(404, "not_found", f"no route {request.method} {request.path}: this server was started with "
                                          "--no-feedback (MNIST_EDGE_NO_FEEDBACK), so it stores no corrections")
    return store


def _answer(value: object) -> dict:
    """The answer the person saw, as sent, with the served model's sha256 added when the client named none."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRequestError("`answer` must be an object: what the model answered (digit, is_digit, backend)")
    size = len(jsonio.dump(value))
    if size > MAX_ANSWER_BYTES:
        raise PayloadTooLargeError(f"`answer` is {size:,} bytes of JSON; the limit is {MAX_ANSWER_BYTES:,}",
                                   limit=MAX_ANSWER_BYTES)
    answer = dict(value)
    registry = state().registry
    slot = registry.slots.get(answer.get("backend") if isinstance(answer.get("backend"), str) else registry.default)
    if slot is not None and "model_sha256" not in answer:
        answer["model_sha256"] = slot.entry.get("sha256")  # which model was wrong: training compares against it
    return answer


@bp.post("/feedback")
def add() -> tuple[dict, int]:
    """Store one correction; 201 with its id and the count, only once it is on disk."""
    store = _store()
    reject_unknown("query parameter", request.args, ())
    if not request.is_json:
        raise UnsupportedMediaError(f"Content-Type {request.mimetype or '(none)'} is not taken; send application/json "
                                    '{"image": <base64 PNG>, "label": 0-9 or null, "answer": {...}}',
                                    content_type=request.mimetype or None)
    body = jsonio.parse(request.get_data(cache=False))
    if not isinstance(body, dict):
        raise MalformedRequestError('the body is JSON but not an object: send {"image": ..., "label": ...}')
    reject_unknown("JSON key", body, FIELDS)
    missing = [name for name in ("image", "label") if name not in body]
    if missing:
        raise MalformedRequestError(f"missing {', '.join(f'`{name}`' for name in missing)}: send the drawing as "
                                    "`image` and what it is as `label` (0-9, or null for not a digit)")
    label = check_label(body["label"])
    png = b64_image(body["image"])
    check_png(png)
    decode_image(png, max_pixels=state().config.max_image_pixels or MAX_PIXELS)  # a PNG that decodes, or 400
    correction_id, count = store.add(png, label, _answer(body.get("answer")))
    return {"id": correction_id, "count": count}, 201


@bp.get("/feedback")
def stats() -> dict:
    """How many corrections are stored, per label, how many the model got wrong, and the database's size."""
    store = _store()
    reject_unknown("query parameter", request.args, ())
    return store.stats()
