"""Keras -> ONNX with tf2onnx, and ONNX -> ONNX int8 with onnxruntime.quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

OPSET = 17
CALIBRATION_BATCH = 100
CALIBRATION_IMAGES = 1000


def serving_function(model):
    """The model as a tf.function with a dynamic batch: (None, 28, 28, 1) float32 -> probabilities."""
    import tensorflow as tf

    from mnist_edge.train.models import INPUT_NAME

    @tf.function(input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME)])
    def serve(image):
        return model(image, training=False)

    return serve


def rename_tensors(graph, names: dict[str, str]) -> None:
    """Rename tensors everywhere a graph mentions them: node inputs and outputs, initializers, value infos, and
    the graph's inputs and outputs."""
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        value.name = names.get(value.name, value.name)


def compact_names(graph) -> None:
    """Short names for every tensor and node but the graph's inputs and outputs. tf2onnx's scoped TF names, each
    repeated in the quantizer's own, are a large share of a small int8 file."""
    keep = {value.name for value in (*graph.input, *graph.output)}
    produced = [*(init.name for init in graph.initializer), *(name for node in graph.node for name in node.output)]
    inner = [name for name in dict.fromkeys(produced) if name and name not in keep]  # "" is an omitted input
    rename_tensors(graph, {name: f"t{i}" for i, name in enumerate(inner)})
    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{i}"


def keras_to_onnx(model, **_) -> bytes:
    """ONNX fp32 via tf2onnx.from_function (from_keras breaks on Keras 3), batch dimension dynamic."""
    import tf2onnx

    from mnist_edge.train.models import INPUT_NAME, OUTPUT_NAME

    serve = serving_function(model)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=OPSET)
    # tf2onnx names tensors after TF's graph ("image:0", "Identity:0"); give them the model's names.
    rename_tensors(proto.graph, {proto.graph.input[0].name: INPUT_NAME, proto.graph.output[0].name: OUTPUT_NAME})
    proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    return proto.SerializeToString()


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over an image array."""

    def __init__(self, input_name: str, images: np.ndarray) -> None:
        self.batches = iter([{input_name: images[i : i + CALIBRATION_BATCH]}
                             for i in range(0, len(images), CALIBRATION_BATCH)])

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def onnx_to_onnx_int8(onnx_fp32: bytes, *, calibration: np.ndarray, **_) -> bytes:
    """Static int8 quantization in QDQ format, per-channel weights, calibrated on training images."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load_from_string(onnx_fp32).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = (Path(tmp) / n for n in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(onnx_fp32)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # static shapes but N
        quantize_static(
            str(prepared),
            str(target),
            _Calibration(input_name, calibration[:CALIBRATION_IMAGES].astype(np.float32)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,  # S8S8 QDQ is ORT's recommended pairing on x86 and ARM
            weight_type=QuantType.QInt8,
            # 7-bit weights: x86 CPUs without VNNI multiply int8 with VPMADDUBSW, whose 16-bit sums saturate on
            # full-range weights (measured on such a CPU: a 2-epoch model agreed with fp32 on 88.8 % of test
            # images at 8 bits, 99.6 % at 7). ARM and VNNI CPUs lose nothing that shows.
            reduce_range=True,
        )
        quantized = onnx.load(str(target))
    compact_names(quantized.graph)
    return quantized.SerializeToString()
