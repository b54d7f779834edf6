"""Keras -> TFLite in four precisions, one function each."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator

import numpy as np

REPRESENTATIVE_IMAGES = 500  # calibration images for full-integer quantization; more changes nothing measurable


def _converter(model):
    import keras
    import tensorflow as tf

    # TFLite keeps every fused op's name, each part prefixed with the model's name ("mnist_edge_cnn_1/"), a few
    # hundred bytes of an int8 file. The same graph under a one-letter name.
    model = keras.Model(model.inputs, model.outputs, name="m")
    # from_keras_model freezes the weights; from_concrete_functions on a Keras 3 model keeps them as
    # resource variables, and the interpreter then fails with READ_VARIABLE / NaN outputs.
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _convert(converter) -> bytes:
    # The Keras export inside convert() prints every captured variable to stdout; keep the CLI readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def keras_to_tflite_fp32(model, **_) -> bytes:
    """Float32 TFLite: the reference conversion, no quantization."""
    return _convert(_converter(model))


def keras_to_tflite_fp16(model, **_) -> bytes:
    """Float16 weights (half the size), float32 compute and I/O."""
    import tensorflow as tf

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return _convert(converter)


def keras_to_tflite_dynamic(model, **_) -> bytes:
    """Dynamic-range int8: int8 weights, activations quantized on the fly, float32 I/O."""
    import tensorflow as tf

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(converter)


def representative(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A representative-dataset generator over float32 N x 28 x 28 x 1 images, one per step."""

    def generate() -> Iterator[list[np.ndarray]]:
        for image in images[:REPRESENTATIVE_IMAGES]:
            yield [image[None].astype(np.float32)]

    return generate


def keras_to_tflite_int8(model, *, calibration: np.ndarray, **_) -> bytes:
    """Full-integer int8, int8 input and output (what microcontrollers and NPUs take)."""
    import tensorflow as tf

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # The representative dataset calibrates the input; this warning is about the legacy
        # quantized_input_stats option, which int8 I/O never needs.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return _convert(converter)
