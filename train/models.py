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
# The teacher of the served model (train/distill.py): the trained network reading each image three times, at three
# stroke weights (as given, blended this far towards a 3x3 dilation, this far towards a 3x3 erosion), averaging what
# it saw. Chosen on the held-back training digits over 0.3/0.2 and 0.8/0.4: for the default network's weights,
# MNIST 99.46 -> 99.56 % and drawn 99.16 -> 99.20 % against a single read.
STROKE_VIEWS = (("thicker", 0.5), ("thinner", 0.3))


def _conv_bn(x, filters: int, *, size: int = 3, padding: str = "same"):
    # No bias: batch norm's shift replaces it, and the converters fold BN into the conv.
    x = layers.Conv2D(filters, size, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # Keras' 0.99 lags for hundreds of steps
    return layers.ReLU()(x)


def _head(x):
    # Eleven classes: the ten digits, then "not a digit" (runtime/answers.py reads them back apart).
    logits = layers.Dense(CLASSES, name=LOGITS_NAME)(x)
    return layers.Softmax(name=OUTPUT_NAME)(logits)


def build_cnn() -> keras.Model:
    """The default model: one 5x5 conv at 28 x 28, then 3x3 convs at 14 x 14 and 7 x 7, all with batch norm, then
    global pooling (~123k params). Most of its work is done at the lower resolutions: it costs about half as much
    per image as five 3x3 convs starting at 28 x 28 (83k params), for the same accuracy on the held-back digits."""
    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    x = _conv_bn(inputs, 24, size=5)
    x = layers.MaxPooling2D()(x)  # 14 x 14
    x = _conv_bn(x, 48)
    x = layers.MaxPooling2D()(x)  # 7 x 7
    x = _conv_bn(x, 96)
    x = _conv_bn(x, 80, padding="valid")  # 5 x 5
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


def _stroke_view(image, kind: str, amount: float):
    # Stock layers only, so the saved model loads without custom code and every converter maps it; each named,
    # as the trained network's own layers already hold Keras' default names.
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{kind}_pool")
    if kind == "thicker":
        target = pool(image)  # a 3x3 dilation
    else:  # a 3x3 erosion: the max-pool of the negated image, negated back
        negated = layers.Rescaling(-1.0, name=f"{kind}_negate")(image)
        target = layers.Rescaling(-1.0, name=f"{kind}_unnegate")(pool(negated))
    kept = layers.Rescaling(1.0 - amount, name=f"{kind}_kept")(image)
    moved = layers.Rescaling(amount, name=f"{kind}_moved")(target)
    return layers.Add(name=kind)([kept, moved])


def with_stroke_views(model: keras.Model) -> keras.Model:
    """The trained `model` (a chain of layers ending in the logits and the softmax) reading each image as given
    and at each of STROKE_VIEWS' stroke weights, its features averaged before the logits layer.

    The layers are the trained ones, shared, so the weights are the same; since the logits layer is linear,
    averaging the features is averaging the three views' logits."""
    chain = model.layers[1:]
    head = [model.get_layer(LOGITS_NAME), model.get_layer(OUTPUT_NAME)]
    if chain[-2:] != head:
        raise ValueError(f"{model.name}: expected a chain of layers ending in {LOGITS_NAME} and {OUTPUT_NAME}")
    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    seen = []
    for image in [inputs, *(_stroke_view(inputs, kind, amount) for kind, amount in STROKE_VIEWS)]:
        for layer in chain[:-2]:
            image = layer(image)
        seen.append(image)
    logits = head[0](layers.Average(name="views")(seen))
    return keras.Model(inputs, layers.Softmax(name=OUTPUT_NAME)(logits), name=f"{model.name}_views")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {"cnn": build_cnn, "seed": build_seed}


def build_model(arch: str) -> keras.Model:
    """Build an uncompiled model of the named architecture."""
    try:
        return ARCHITECTURES[arch]()
    except KeyError:
        raise UnknownNameError("architecture", arch, list(ARCHITECTURES)) from None
