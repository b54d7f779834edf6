"""What a v1 image request carries, read the same way by every v1 route: an upload, a raw image or JSON, and options."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from flask import request

from mnist_edge.runtime.api import jsonio
from mnist_edge.runtime.api.state import state
from mnist_edge.runtime.decode import decode_image
from mnist_edge.runtime.errors import (
    ImageDecodeError, MalformedRequestError, PayloadTooLargeError, UnknownParameterError, UnsupportedMediaError,
)

ACCEPTED = "multipart/form-data (field `file`), image/* or application/octet-stream, or application/json"
UPLOAD_FIELDS = ("file", "image")  # multipart file fields an image may come in
TRUE = ("1", "true", "yes", "on")
# The options' types in a JSON body, as the OpenAPI document says, and how an error names them.
JSON_OPTIONS = {"backend": (str, "a model name (a string)"), "return_image": (bool, "true or false")}


@dataclass
class Body:
    """A request's images, not yet decoded (file bytes, or JSON {image|pixels} objects), and its options."""

    items: list[bytes | dict]
    is_batch: bool
    backend: str | None
    return_image: bool


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


def image_of(item: bytes | dict, max_pixels: int) -> np.ndarray:
    """One item of a Body -> its pixels, decoded (upright, as few channels as hold the ink) but not preprocessed."""
    if isinstance(item, bytes):
        return decode_image(item, max_pixels=max_pixels)
    if not isinstance(item, dict):
        raise MalformedRequestError("each input must be an object with `image` or `pixels`")
    reject_unknown("JSON key", item, ("image", "pixels"))
    if len(item) != 1:
        raise MalformedRequestError("send one of `image` (base64 PNG/JPEG) or `pixels` (rows of numbers), "
                                    f"not {len(item)}")
    if "image" in item:
        return decode_image(b64_image(item["image"]), max_pixels=max_pixels)
    return _pixels(item["pixels"], max_pixels)


def reject_unknown(kind: str, given: Iterable[str], valid: tuple[str, ...]) -> None:
    """A 400 naming every parameter the route does not take, and the ones it does."""
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise UnknownParameterError(kind, unknown, valid)


def _json_items(options: dict, valid: tuple[str, ...], batch: bool) -> tuple[list[object], bool]:
    body = jsonio.parse(request.get_data(cache=False))
    if not isinstance(body, dict):
        shapes = "{\"image\": ...}, {\"pixels\": ...}" + (" or {\"instances\": [...]}" if batch else "")
        raise MalformedRequestError(f"the body is JSON but not an object: send {shapes}")
    reject_unknown("JSON key", body, valid + ("image", "pixels") + (("instances",) if batch else ()))
    for key, (kind, described) in JSON_OPTIONS.items():
        value = body.get(key)
        if value is not None and not isinstance(value, kind):  # wrong even where the query string also says it
            raise MalformedRequestError(f"`{key}` in JSON must be {described}")
        if options[key] is None and value is not None:
            options[key] = value
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


def read_body(valid: tuple[str, ...], *, batch: bool = True) -> Body:
    """Whatever the request carries (upload, raw image, JSON; a JSON `instances` batch if `batch`) and the options in
    `valid` (backend, return_image) from the query, the form or the JSON."""
    reject_unknown("query parameter", request.args, valid)
    options = {"backend": request.args.get("backend"), "return_image": request.args.get("return_image")}
    mimetype = request.mimetype
    if request.is_json:
        items, is_batch = _json_items(options, valid, batch)
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
    flag = options["return_image"]  # true in JSON, or a word in the query or a form
    return_image = flag is True or (isinstance(flag, str) and flag.lower() in TRUE)
    return Body(items, is_batch, options["backend"], return_image)
