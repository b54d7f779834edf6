"""The baseline users start from: the seed tutorial's network, Keras `model.predict` on one image.

Every other figure of `mnist-edge bench` is also given as a ratio to this one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

TRAIN_IMAGES = 3000  # a few seconds of training: enough for its answers to be checked, not to be good


@pytest.fixture(scope="module")
def seed_model(mnist, digits):
    """The `--arch seed` network trained one epoch on a slice of MNIST (seconds), checked on the test digits."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras", reason="the seed baseline needs TensorFlow: pip install -e '.[train]'")
    from mnist_edge.runtime.preprocess import scale_pixels
    from mnist_edge.train.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("seed")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(scale_pixels(mnist.x_train[:TRAIN_IMAGES]), mnist.y_train[:TRAIN_IMAGES], epochs=1, batch_size=64,
              verbose=0)
    images, labels = digits
    accuracy = float((model.predict(images, verbose=0).argmax(axis=1) == labels).mean())
    assert accuracy >= 0.8, f"the seed network trained on {TRAIN_IMAGES} digits got only {accuracy:.0%} right"
    return model


def test_keras_predict_seed(benchmark, seed_model, digits):
    benchmark.group = "baseline: Keras model.predict, seed network"
    benchmark.extra_info.update(baseline=True, model="seed (Keras model.predict)", batch=1)
    images, labels = digits
    probs = benchmark(seed_model.predict, images[:1], verbose=0)
    assert probs.shape == (1, 11)  # ten digits and not-a-digit, as every mnist-edge model
    assert int(np.argmax(probs)) == labels[0]
