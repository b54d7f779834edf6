"""ONNX Runtime backend with a configurable, prioritized list of execution providers."""

from __future__ import annotations

import logging

import numpy as np

from mnist_edge.runtime.backends.base import Backend, tensor_spec
from mnist_edge.runtime.errors import ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
# ONNX Runtime's names for the element types it reports, as numpy dtypes.
ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(float16)": "float16"}


def select_providers(wanted: tuple[str, ...] | list[str], available: list[str]) -> list[str]:
    """The wanted providers this onnxruntime build has, in priority order, CPU always last as fallback."""
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        log.warning("execution providers %s not available (have %s); falling back", missing, available)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxBackend(Backend):
    """Runs .onnx files (fp32 and QDQ int8). One session serves every thread."""

    format = "onnx"

    def __init__(self, path, *, providers: tuple[str, ...] | list[str] = DEFAULT_PROVIDERS, threads: int = 1) -> None:
        super().__init__(path)
        self.providers = tuple(providers)
        # One intra-op thread per session: concurrent requests use the cores, and no pool spins between runs.
        self.threads = threads
        self.session = None

    def load(self) -> None:
        """Create the inference session on the best available providers."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # ORT's own warnings go to stderr, not through logging
        chosen = select_providers(self.providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=chosen)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors for bad files
            raise ModelLoadError(f"cannot load ONNX model {self.path.name}: {exc}") from exc
        self._input = self.session.get_inputs()[0].name
        if self.session.get_providers()[0] != chosen[0]:
            log.warning("%s: asked for %s, running on %s", self.path.name, chosen, self.session.get_providers())
        self.warm_up()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the batch through the session."""
        return self.session.run(None, {self._input: batch.astype(np.float32, copy=False)})[0]

    def tensors(self) -> dict:
        """Graph inputs and outputs (QDQ models keep float32 I/O)."""

        def describe(arg) -> dict:
            return tensor_spec(arg.name, arg.shape, ORT_DTYPES.get(arg.type, "float32"))

        return {"inputs": [describe(a) for a in self.session.get_inputs()],
                "outputs": [describe(a) for a in self.session.get_outputs()]}

    def info(self) -> dict:
        """Adds the execution providers actually in use."""
        return {**super().info(), "providers": self.session.get_providers()}
