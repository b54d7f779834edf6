"""Training: the architectures, augmentation, reproducibility, and the report it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_edge.train.calibrate import FALSE_REJECTION
from mnist_edge.train.fit import TrainConfig, not_digits_per_generator
from mnist_edge.train.negatives import TRAINING


def test_seed_architecture_is_the_tutorial_network():
    from keras import layers

    from mnist_edge.train.models import build_model

    model = build_model("seed")
    kinds = [type(layer) for layer in model.layers[1:]]
    assert kinds == [layers.Conv2D, layers.MaxPooling2D, layers.Flatten, layers.Dense, layers.Dense, layers.Softmax]
    conv, _, _, hidden, logits, _ = model.layers[1:]
    assert conv.filters == 32 and conv.kernel_size == (3, 3) and conv.activation.__name__ == "relu"
    assert hidden.units == 128 and hidden.activation.__name__ == "relu"
    assert logits.units == 11 and logits.activation.__name__ == "linear"  # ten digits and not-a-digit


def test_default_architecture_fits_the_int8_budget():
    from mnist_edge.train.models import build_model

    model = build_model("cnn")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 11)
    # One byte per int8 weight plus the graph: under ~128k parameters keeps the int8 file within 150 KB.
    assert model.count_params() < 128_000


def test_stroke_views_average_the_logits_of_three_stroke_weights():
    import keras
    import tensorflow as tf

    from mnist_edge.train.models import (
        INPUT_NAME,
        LOGITS_NAME,
        OUTPUT_NAME,
        STROKE_VIEWS,
        build_model,
        with_stroke_views,
    )

    keras.utils.set_random_seed(1)
    model = build_model("cnn")
    logits = keras.Model(model.inputs, model.get_layer(LOGITS_NAME).output)
    views = with_stroke_views(model)
    assert views.count_params() == model.count_params()  # the same trained layers, shared
    assert views.input.name == INPUT_NAME and views.layers[-1].name == OUTPUT_NAME
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME").numpy()
    eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME").numpy()
    thicker, thinner = dict(STROKE_VIEWS)["thicker"], dict(STROKE_VIEWS)["thinner"]
    seen = [images, (1 - thicker) * images + thicker * dilated, (1 - thinner) * images + thinner * eroded]
    expected = tf.nn.softmax(np.mean([logits.predict(v, verbose=0) for v in seen], axis=0)).numpy()
    np.testing.assert_allclose(views.predict(images, verbose=0), expected, atol=1e-5)
    assert not np.allclose(views.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-3)


def test_unknown_architecture_lists_the_valid_ones():
    from mnist_edge.runtime.errors import UnknownNameError
    from mnist_edge.train.models import build_model

    with pytest.raises(UnknownNameError, match="cnn, seed"):
        build_model("resnet")


def test_augmentation_keeps_range_and_changes_images(mnist):
    import tensorflow as tf

    from mnist_edge.runtime.preprocess import scale_pixels
    from mnist_edge.train.augment import augment

    batch = tf.constant(scale_pixels(mnist.x_train[:64]))
    out = augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    again = augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    other = augment(batch, tf.constant([1, 3], tf.int64)).numpy()
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, again)  # stateless: the seed decides
    assert not np.allclose(out, other)
    assert np.abs(out - batch.numpy()).mean() > 0.01  # it really distorts
    # Ink survives: a distortion that erased or flooded digits would teach nothing.
    ratio = out.sum(axis=(1, 2, 3)) / batch.numpy().sum(axis=(1, 2, 3))
    assert 0.4 < ratio.min() and ratio.max() < 3


def test_distillation_teaches_a_network_the_stroke_views_answers(tiny_models, mnist):
    import keras

    from mnist_edge.runtime.preprocess import scale_pixels
    from mnist_edge.train.distill import DistillConfig, distill
    from mnist_edge.train.fit import batches
    from mnist_edge.train.models import build_cnn, with_stroke_views

    keras.utils.set_random_seed(1)
    teacher, student = with_stroke_views(keras.models.load_model(tiny_models / "model.keras")), build_cnn()
    frozen = [w.copy() for w in teacher.get_weights()]
    images, labels = scale_pixels(mnist.x_train[:2048]), mnist.y_train[:2048]
    taught = teacher.predict(images, verbose=0).argmax(axis=1)
    assert (student.predict(images, verbose=0).argmax(axis=1) == taught).mean() < 0.5  # an untrained network

    # The teacher's answers alone (no labels): the student learns to give them.
    cfg = TrainConfig(batch_size=64, augment=False)
    distill(teacher, student, batches(images, labels, cfg), DistillConfig(epochs=4, learning_rate=2e-3, label_weight=0.0), steps=32,
            verbose=0)
    assert (student.predict(images, verbose=0).argmax(axis=1) == taught).mean() > 0.8
    for a, b in zip(frozen, teacher.get_weights(), strict=True):  # the teacher only teaches
        np.testing.assert_array_equal(a, b)


def test_same_seed_gives_the_same_weights(mnist):
    from mnist_edge.train.fit import TrainConfig, train

    cfg = TrainConfig(epochs=1, limit=512, batch_size=64, drawn_test=20, test_negatives=5)
    first, _ = train(mnist.subset(n_test=200), cfg, verbose=0)
    second, _ = train(mnist.subset(n_test=200), cfg, verbose=0)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "views" not in {layer.name for layer in first.layers}  # distilled: it reads each image once


def test_stroke_views_serve_the_fitted_network_reading_each_image_three_times(mnist):
    from mnist_edge.train.fit import TrainConfig, train

    cfg = TrainConfig(epochs=1, limit=512, batch_size=64, drawn_test=20, test_negatives=5, stroke_views=True)
    model, report = train(mnist.subset(n_test=200), cfg, verbose=0)
    assert "views" in {layer.name for layer in model.layers}
    assert report["config"]["stroke_views"] and model.count_params() == report["params"]


def test_training_report_and_files(tiny_models):
    report = json.loads((tiny_models / "training.json").read_text())
    test = report["test"]
    assert test["count"] == 10000  # the whole test set, not the slice the tiny model trained on
    assert 0.9 < test["accuracy"] <= 1
    matrix = np.array(test["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10000
    assert np.trace(matrix) == 10000 - test["errors"]
    assert set(test["per_class_accuracy"]) == {str(d) for d in range(10)}
    # 3,600 digits (the last 400 are held back to calibrate) and 15 % as many non-digits (540, give or take rounding).
    not_digits = len(TRAINING) * not_digits_per_generator(3600, TrainConfig())
    assert abs(not_digits - 540) < len(TRAINING)
    # And the candidates of 180 numbers (5 % of 3,600) cut as /v1/read cuts them, no more not-digits than digits.
    cut = report["cut_pieces"]
    assert 0 < cut["not_digits"] <= cut["digits"]
    assert report["config"]["arch"] == "cnn" and report["train_images"] == 3600 + not_digits + sum(cut.values())
    assert report["versions"]["tensorflow"]
    decision = report["not_a_digit"]
    assert 0 < decision["threshold"] < 1 and 0.5 <= decision["temperature"] <= 4
    # The threshold was chosen to reject at most 0.5 % of the held-back drawn digits, which it names.
    assert decision["validation"]["drawn"]["false_rejection"] <= FALSE_REJECTION
    assert len(decision["held_back_sha256"]) == 64
    drawn = decision["drawn_test"]
    assert drawn["count"] == 300 and 0 <= drawn["calibration"]["ece"] <= 1
    assert sum(b["count"] for b in drawn["calibration"]["bins"]) == 300
    generators = decision["not_digits"]["generators"]
    assert {name for name, g in generators.items() if g["held_out"]} == {"symbols", "faces", "pairs"}
    assert all(g["count"] == 40 and 0 <= g["flagged"] <= 1 for g in generators.values())
    assert 0 <= test["false_rejection"] <= 1
    for name in ("confusion_matrix.png", "reliability.png"):
        assert (tiny_models / name).read_bytes().startswith(b"\x89PNG")


def test_summarize_counts_errors_per_class():
    from mnist_edge.train.training_report import summarize

    labels = np.array([0, 0, 1, 1])
    probs = np.eye(10)[[0, 1, 1, 1]]
    summary = summarize(labels, probs)
    assert summary["accuracy"] == 0.75 and summary["errors"] == 1
    assert summary["per_class_accuracy"]["0"] == 0.5 and summary["per_class_accuracy"]["1"] == 1.0
    assert summary["confusion_matrix"][0][1] == 1


def test_run_folders_are_new_and_the_newest_is_found(tmp_path):
    from datetime import datetime

    from mnist_edge.runtime.errors import DataError
    from mnist_edge.train.runs import new_run, newest_run

    with pytest.raises(DataError, match="no run with model.keras"):
        newest_run(tmp_path / "runs", holding="model.keras")
    now = datetime(2025, 1, 2, 3, 4, 5)
    runs = [new_run(tmp_path / "runs", now=now) for _ in range(11)]  # same second: suffixed, never shared
    assert [p.name for p in runs[:3]] == ["20250102-030405", "20250102-030405-2", "20250102-030405-3"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in runs)
    for run in runs[8:10]:
        (run / "model.keras").write_bytes(b"")
    assert newest_run(tmp_path / "runs", holding="model.keras") == runs[9]  # -10 sorts after -9
    (new_run(tmp_path / "runs") / "model.keras").write_bytes(b"")  # now: years later
    assert newest_run(tmp_path / "runs", holding="model.keras").name.startswith(datetime.now().strftime("%Y"))
    assert newest_run(tmp_path / "runs", holding="model.keras") != runs[9]
