"""JSON in and out with orjson: Flask's JSON provider for the app, and the one body parser the routes share."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider

from mnist_edge.runtime.errors import InvalidJsonError

# NumPy arrays and scalars go out as they are (float32 in its shortest form), without a .tolist() copy first.
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse(data: bytes | memoryview) -> Any:
    """Bytes -> a JSON value; anything that does not parse (syntax, UTF-8, nesting past 1024 levels) is invalid_json."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidJsonError(f"the body is not valid JSON: {exc}") from None


def dump(value: Any) -> bytes:
    """A JSON value -> UTF-8 bytes."""
    return orjson.dumps(value, option=DUMP_OPTIONS)


class OrjsonProvider(JSONProvider):
    """Flask's JSON provider on orjson: views returning dicts, jsonify and request.get_json all use it."""

    mimetype = "application/json"

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """A value as JSON text (Flask's keyword options, such as indent, do not apply to orjson)."""
        return dump(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """JSON text or bytes -> a value."""
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A JSON response built from bytes, skipping the str round trip of the base class."""
        if args and kwargs:
            raise TypeError("pass positional or keyword arguments, not both")
        value = kwargs or (args[0] if len(args) == 1 else list(args) or None)
        return self._app.response_class(dump(value), mimetype=self.mimetype)
