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
