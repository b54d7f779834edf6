"""The table of artifacts: the single source of truth for what `mnist-edge convert` produces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnist_edge.convert.onnx import keras_to_onnx, onnx_to_onnx_int8
from mnist_edge.convert.tflite import (
    keras_to_tflite_dynamic,
    keras_to_tflite_fp16,
    keras_to_tflite_fp32,
    keras_to_tflite_int8,
)

KERAS_FILE = "model.keras"


@dataclass(frozen=True)
class Tolerance:
    """How far an artifact may drift from the Keras model before its conversion fails."""

    max_accuracy_drop: float = 0.003  # 0.3 points on the 10,000 test images
    min_agreement: float = 0.999  # share of test images with the same top-1 digit as Keras
    # Share of test images and non-digits with the same is-digit decision as Keras (at the manifest's threshold).
    min_is_digit_agreement: float = 0.999
    max_abs_diff: float = 1e-3  # largest |p - p_keras| over all images and classes


@dataclass(frozen=True)
class Format:
    """One artifact: its name (also the served model's name), runtime, precision, file and converter."""

    name: str
    format: str  # the runtime that runs it: keras, tflite or onnx
    precision: str
    file: str
    convert: Callable[..., bytes] | None  # None: produced by training, not conversion
    source: str = "keras"  # what `convert` takes: the Keras model, or another artifact's bytes
    tolerance: Tolerance = Tolerance()


# Quantized formats drift by design; the limits below sit a few times above what the shipped model
# measured (models/manifest.json), so a broken conversion fails while a normal one passes.
# The int8 limits are far wider than the shipped model needs (accuracy +0.03 points, is-digit agreement 99.93-99.97 %):
# a 2-epoch test model, whose scores crowd its threshold, measured -0.35 points and 95.5-98.0 %; a broken quantization
# falls well below both.
INT8 = Tolerance(max_accuracy_drop=0.006, min_agreement=0.99, min_is_digit_agreement=0.93, max_abs_diff=0.35)
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "keras", "fp32", KERAS_FILE, None),
    Format("tflite-fp32", "tflite", "fp32", "model_fp32.tflite", keras_to_tflite_fp32),
    Format("tflite-fp16", "tflite", "fp16", "model_fp16.tflite", keras_to_tflite_fp16,
           tolerance=Tolerance(min_agreement=0.998, min_is_digit_agreement=0.998, max_abs_diff=0.02)),
    Format("tflite-dynamic", "tflite", "dynamic-int8", "model_dynamic.tflite", keras_to_tflite_dynamic, tolerance=INT8),
    Format("tflite-int8", "tflite", "int8", "model_int8.tflite", keras_to_tflite_int8, tolerance=INT8),
    Format("onnx-fp32", "onnx", "fp32", "model_fp32.onnx", keras_to_onnx),
    Format("onnx-int8", "onnx", "int8", "model_int8.onnx", onnx_to_onnx_int8, source="onnx-fp32", tolerance=INT8),
)}
