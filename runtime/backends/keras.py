"""Optional Keras backend: the reference model itself, only when TensorFlow is installed."""

from __future__ import annotations

import numpy as np

from mnist_edge.runtime.backends.base import Backend, tensor_spec
from mnist_edge.runtime.errors import ModelLoadError


class KerasBackend(Backend):
    """Runs .keras files with TensorFlow; never imported on the edge install."""

    format = "keras"

    def load(self) -> None:
        """Import Keras (heavy) and load the model."""
        try:
            import keras
        except ImportError as exc:
            raise ModelLoadError("the keras backend needs TensorFlow: pip install 'mnist-edge[train]'") from exc
        try:
            self.model = keras.models.load_model(self.path, compile=False)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load Keras model {self.path.name}: {exc}") from exc
        self.warm_up()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Inference-mode forward pass."""
        return np.asarray(self.model(batch.astype(np.float32, copy=False), training=False), dtype=np.float32)

    def tensors(self) -> dict:
        """Keras input and output layers."""
        return {"inputs": [tensor_spec(t.name, t.shape, "float32") for t in self.model.inputs],
                "outputs": [tensor_spec(t.name, t.shape, "float32") for t in self.model.outputs]}
