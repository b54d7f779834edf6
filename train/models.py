"""The CNN architectures: the default mnist-edge CNN and the seed tutorial's network, to compare against."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from mnist_edge.runtime.answers import CLASSES
from mnist_edge.runtime.errors import UnknownNameError

INPUT_SHAPE = (28, 28, 1)
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
LOGITS_NAME = "logits"  # the last Dense layer: calibration scales its weights (train/calibrate.py)


def _conv_bn(x, filters: int, *, padding: str = "same"):
    # No bias: batch norm's shift replaces it, and the converters fold BN into the conv.
    x = layers.Conv2D(filters, 3, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # Keras' 0.99 lags for hundreds of steps
    return layers.ReLU()(x)


def _head(x):
    # Eleven classes: the ten digits, then "not a digit" (runtime/answers.py reads them back apart).
    logits = layers.Dense(CLASSES, name=LOGITS_NAME)(x)
    return layers.Softmax(name=OUTPUT_NAME)(logits)


def build_cnn() -> keras.Model:
    """The default model: two conv blocks with batch norm, then global pooling (~83k params, int8 < 100 KB)."""
    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    x = _conv_bn(inputs, 16)
    x = _conv_bn(x, 32)
    x = layers.MaxPooling2D()(x)  # 14 x 14
    x = _conv_bn(x, 48)
    x = _conv_bn(x, 48)
    x = layers.MaxPooling2D()(x)  # 7 x 7
    x = _conv_bn(x, 96, padding="valid")  # 5 x 5
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    return keras.Model(inputs, _head(x), name="mnist_edge_cnn")


def build_seed() -> keras.Model:
    """The seed tutorial's network: Conv 32 3x3, MaxPool, Flatten, Dense 128, then the eleven-class head."""
    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, _head(x), name="seed_tutorial")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {"cnn": build_cnn, "seed": build_seed}


def build_model(arch: str) -> keras.Model:
    """Build an uncompiled model of the named architecture."""
    try:
        return ARCHITECTURES[arch]()
    except KeyError:
        raise UnknownNameError("architecture", arch, list(ARCHITECTURES)) from None
