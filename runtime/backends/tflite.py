"""TFLite backend on ai-edge-litert: one interpreter per thread, quantized I/O handled here."""

from __future__ import annotations

import threading

import numpy as np

from mnist_edge.runtime.backends.base import INPUT_SHAPE, Backend, tensor_spec
from mnist_edge.runtime.errors import ModelLoadError


def _quantize(batch: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if not scale:
        return batch.astype(detail["dtype"], copy=False)
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if not scale:
        return values.astype(np.float32, copy=False)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


class TFLiteBackend(Backend):
    """Runs .tflite files (fp32, fp16, dynamic-range and full-integer int8)."""

    format = "tflite"

    def __init__(self, path, *, threads: int = 1) -> None:
        super().__init__(path)
        self.threads = threads  # per interpreter; concurrency comes from one interpreter per server thread
        self._local = threading.local()
        self._content: bytes | None = None

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._content, num_threads=self.threads)
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
        return interpreter

    def load(self) -> None:
        """Read the file and build this thread's interpreter (which validates the flatbuffer)."""
        try:
            self._content = self.path.read_bytes()
            self._interpreter()
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load TFLite model {self.path.name}: {exc}") from exc
        self.warm_up()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the batch on this thread's interpreter, resizing its input to the batch size."""
        interpreter = self._interpreter()
        source = interpreter.get_input_details()[0]
        if source["shape"][0] != len(batch):
            interpreter.resize_tensor_input(source["index"], [len(batch), *INPUT_SHAPE])
            interpreter.allocate_tensors()
            source = interpreter.get_input_details()[0]
        interpreter.set_tensor(source["index"], _quantize(batch, source))
        interpreter.invoke()
        target = interpreter.get_output_details()[0]
        return _dequantize(interpreter.get_tensor(target["index"]), target)

    def tensors(self) -> dict:
        """Input and output tensors as the flatbuffer declares them."""
        interpreter = self._interpreter()

        def describe(detail: dict) -> dict:
            return tensor_spec(detail["name"], detail["shape_signature"], detail["dtype"], detail["quantization"])

        return {"inputs": [describe(d) for d in interpreter.get_input_details()],
                "outputs": [describe(d) for d in interpreter.get_output_details()]}
