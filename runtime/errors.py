"""One error hierarchy for mnist-edge: each error carries an HTTP status and a stable code."""

from __future__ import annotations


class MnistEdgeError(Exception):
    """Base of every error mnist-edge raises on purpose; the CLI and the API render it."""

    status = 400  # HTTP status the API answers with
    code = "bad_request"  # stable, machine-readable; clients switch on it, never on the message

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        """The JSON body every v1 error shares."""
        body: dict = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class DataError(MnistEdgeError):
    """The MNIST data set is missing, truncated or not what it claims to be."""

    code = "bad_data"


class ConversionError(MnistEdgeError):
    """An artifact could not be produced or failed its verification."""

    status = 500
    code = "conversion_failed"


class PublishRefusedError(MnistEdgeError):
    """A candidate model set that measures worse than the one it would replace (`mnist-edge publish --force` overrides)."""

    status = 409
    code = "publish_refused"


class ModelLoadError(MnistEdgeError):
    """A model file is missing, corrupt or does not match its manifest."""

    status = 503
    code = "model_unavailable"


class UnknownNameError(MnistEdgeError):
    """A name (backend, model, format) that is not registered."""

    status = 404
    code = "unknown_name"

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        listed = ", ".join(sorted(valid)) or "none"
        super().__init__(f"unknown {kind} {name!r}; valid: {listed}", kind=kind, name=name, valid=sorted(valid))


class ImageDecodeError(MnistEdgeError):
    """Bytes that are no image we can read, or an array of the wrong shape or type."""

    code = "bad_image"


class BlankImageError(MnistEdgeError):
    """An image with no ink on it: nothing to classify, and guessing would mislead."""

    code = "blank_image"


class PayloadTooLargeError(MnistEdgeError):
    """A request body, batch or image (decompression bomb) over its limit."""

    status = 413
    code = "too_large"


class UnsupportedMediaError(MnistEdgeError):
    """A Content-Type the endpoint does not take."""

    status = 415
    code = "unsupported_media_type"


class UnauthorizedError(MnistEdgeError):
    """A bearer token is configured and the request's is missing or wrong."""

    status = 401
    code = "unauthorized"


class MalformedRequestError(MnistEdgeError):
    """A request whose body or fields are not what the endpoint takes (bad JSON, missing field, wrong shape)."""

    code = "malformed_request"


class InvalidJsonError(MnistEdgeError):
    """A body that should be JSON and does not parse (syntax, encoding, nesting too deep)."""

    code = "invalid_json"


class UnknownParameterError(MnistEdgeError):
    """A query parameter, form field or JSON key the endpoint does not take: named, with the ones it does."""

    code = "unknown_parameter"

    def __init__(self, kind: str, unknown: list[str], valid: list[str] | tuple[str, ...]) -> None:
        names = ", ".join(f"`{name}`" for name in unknown)
        listed = ", ".join(sorted(valid)) or "none"
        plural = "s" if len(unknown) > 1 else ""
        super().__init__(f"unknown {kind}{plural} {names}; valid: {listed}", kind=kind, unknown=unknown,
                         valid=sorted(valid))


class ConfigError(MnistEdgeError):
    """A server setting (flag or MNIST_EDGE_* variable) with a value that cannot work."""

    code = "bad_config"


class HttpError(MnistEdgeError):
    """A protocol-level error Werkzeug raised (no such route, wrong method), carried into our JSON shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class StorageFullError(MnistEdgeError):
    """The feedback database reached its size cap, or its disk is full: nothing was stored."""

    status = 507
    code = "storage_full"


class StorageUnavailableError(MnistEdgeError):
    """The feedback database cannot be written (read-only, no such folder, I/O error, busy): nothing was stored."""

    status = 503
    code = "storage_unavailable"


class BenchmarkError(MnistEdgeError):
    """`mnist-edge bench` could not measure: a tool is missing, the server never got ready, a suite failed."""

    status = 500
    code = "benchmark_failed"


class InternalError(MnistEdgeError):
    """Anything unexpected: logged in full, answered without internals."""

    status = 500
    code = "internal_error"
