"""The MLServer runtime a user would write to serve an ONNX file: MLServer 1.7.1 ships none for ONNX.

`mnist-edge bench --peer mlserver` copies this file next to the settings it generates; it runs inside
MLServer's own environment (mlserver, onnxruntime), never imported by mnist-edge itself.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxModel(MLModel):
    """One ONNX Runtime session with one intra-op thread, the same session options mnist-edge's backend uses."""

    async def load(self) -> bool:
        """Open the session on the file that model-settings.json's parameters.uri names."""
        options = ort.SessionOptions()
        # One thread and no spinning, as mnist-edge runs its sessions: both servers then get the same engine.
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = await get_model_uri(self._settings)
        self._session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Feed the request's first input to the graph's input; every graph output comes back as FP32 data."""
        batch = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        results = self._session.run(self._outputs, {self._input: batch})
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(n, r) for n, r in zip(self._outputs, results)])
