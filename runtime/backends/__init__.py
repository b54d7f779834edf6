"""Backends by format: a plain dict, the single place that knows which class runs which file."""

from __future__ import annotations

from mnist_edge.runtime.backends.base import Backend
from mnist_edge.runtime.backends.keras import KerasBackend
from mnist_edge.runtime.backends.onnx import OnnxBackend
from mnist_edge.runtime.backends.tflite import TFLiteBackend
from mnist_edge.runtime.errors import UnknownNameError

BACKENDS: dict[str, type[Backend]] = {cls.format: cls for cls in (TFLiteBackend, OnnxBackend, KerasBackend)}


def backend_class(fmt: str) -> type[Backend]:
    """The backend class for a format; an unknown one raises an error listing the valid formats."""
    try:
        return BACKENDS[fmt]
    except KeyError:
        raise UnknownNameError("backend", fmt, list(BACKENDS)) from None
