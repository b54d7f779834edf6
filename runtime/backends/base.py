"""The backend contract: load a model file, predict probabilities for a batch, describe itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

INPUT_SHAPE = (28, 28, 1)


class Backend(ABC):
    """One model file on one runtime. `predict` must be safe to call from many threads at once."""

    format: ClassVar[str]  # the manifest's `format` this backend runs

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @abstractmethod
    def load(self) -> None:
        """Read the model file and make the runtime ready; raise ModelLoadError when it can't."""

    @abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 N x 28 x 28 x 1 in [0, 1] -> float32 N x 11 probabilities: ten digits, then not-a-digit."""

    @abstractmethod
    def tensors(self) -> dict:
        """The model's input and output tensors: name, shape, dtype, and quantization when it has any."""

    def info(self) -> dict:
        """What this backend is running, for /v1/models and the manifest."""
        return {"format": self.format, "file": self.path.name, **self.tensors()}

    def warm_up(self) -> None:
        """Run one blank image through, so the first real request pays no set-up cost."""
        self.predict(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))


def tensor_spec(name: str, shape, dtype, quantization: tuple[float, int] | None = None) -> dict:
    """One tensor's description, the same shape for every backend (-1 marks the dynamic batch)."""
    spec = {"name": name, "shape": [-1 if d is None or isinstance(d, str) else int(d) for d in shape],
            "dtype": np.dtype(dtype).name}
    if quantization and quantization[0]:
        spec["quantization"] = {"scale": float(quantization[0]), "zero_point": int(quantization[1])}
    return spec
