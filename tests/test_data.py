"""MNIST loading: real IDX bytes written here, gzip and raw, npz, the search order and every broken file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from mnist_edge.runtime.errors import DataError
from mnist_edge.train import data
from mnist_edge.train.data import IMAGES_MAGIC, LABELS_MAGIC, load_mnist, parse_idx


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """Encode an array as an IDX file, the way MNIST's own files are laid out."""
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, *, n_train=6, n_test=4, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"x_{split}"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, n, dtype=np.uint8)
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, stem in names.items():
        raw = idx_bytes(arrays[key], IMAGES_MAGIC if key.startswith("x") else LABELS_MAGIC)
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_idx_folder_round_trips(tmp_path, compress):
    arrays = write_idx_folder(tmp_path, compress=compress)
    mnist = load_mnist(tmp_path)
    for key, expected in arrays.items():
        np.testing.assert_array_equal(getattr(mnist, key), expected)
    assert mnist.source == str(tmp_path)


def test_npz_file_and_folder(tmp_path):
    (tmp_path / "idx").mkdir()
    arrays = write_idx_folder(tmp_path / "idx")
    np.savez(tmp_path / "mnist.npz", **arrays)
    for path in (tmp_path / "mnist.npz", tmp_path):
        np.testing.assert_array_equal(load_mnist(path).y_test, arrays["y_test"])


def test_environment_variable_is_used_when_no_path_given(tmp_path, monkeypatch):
    arrays = write_idx_folder(tmp_path)
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))
    np.testing.assert_array_equal(load_mnist().x_train, arrays["x_train"])


def test_explicit_path_wins_over_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    expected = write_idx_folder(tmp_path / "a", seed=1)
    write_idx_folder(tmp_path / "b", seed=2)
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "b"))
    np.testing.assert_array_equal(load_mnist(tmp_path / "a").x_test, expected["x_test"])


def test_no_source_is_one_line_naming_both_options_and_never_downloads(tmp_path, monkeypatch):
    import keras

    downloads = []
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "no-cache.npz")
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda *args, **kwargs: downloads.append(args))
    with pytest.raises(DataError) as err:
        load_mnist()
    message = str(err.value)
    assert "--data PATH" in message and "MNIST_DATA" in message and "\n" not in message
    # Nothing here can download, and the serve-only install (drawn-eval) has no Keras: neither is advised.
    assert "download" not in message and "Keras" not in message and "online" not in message
    assert downloads == []


def test_keras_cache_is_used_before_download(tmp_path, monkeypatch):
    (tmp_path / "idx").mkdir()
    arrays = write_idx_folder(tmp_path / "idx")
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "mnist.npz")
    np.testing.assert_array_equal(load_mnist().y_train, arrays["y_train"])


def test_wrong_magic_is_rejected():
    raw = idx_bytes(np.zeros((2, 28, 28)), LABELS_MAGIC)
    with pytest.raises(DataError, match="magic"):
        parse_idx(raw, magic=IMAGES_MAGIC, name="x")


def test_truncated_file_is_rejected(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(tmp_path)


def test_truncated_gzip_is_rejected(tmp_path):
    write_idx_folder(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot read"):
        load_mnist(tmp_path)


def test_header_too_short():
    with pytest.raises(DataError, match="too short"):
        parse_idx(b"\x00\x00", magic=LABELS_MAGIC, name="y")


def test_wrong_image_shape_is_rejected(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 27, 28)), IMAGES_MAGIC))
    with pytest.raises(DataError, match="28 x 28"):
        load_mnist(tmp_path)


def test_label_out_of_range_is_rejected(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 2, 3, 4, 12]), LABELS_MAGIC))
    with pytest.raises(DataError, match="up to 12"):
        load_mnist(tmp_path)


def test_label_count_must_match_images(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(5), LABELS_MAGIC))
    with pytest.raises(DataError, match="6 images"):
        load_mnist(tmp_path)


def test_missing_file_and_missing_path(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_npz_missing_key(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="mnist.npz"):
        load_mnist(tmp_path / "mnist.npz")


@pytest.mark.mnist
def test_real_mnist_matches_its_published_checks(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert abs(mnist.x_train.mean() / 255 - 0.1307) < 1e-4
    assert abs((mnist.x_train / 255).std() - 0.3081) < 1e-4
    counts = np.bincount(mnist.y_train, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_one_idx_file_or_any_other_file_is_explained(tmp_path):
    write_idx_folder(tmp_path)
    with pytest.raises(DataError, match=r"one of MNIST's four IDX files: pass the folder that holds all four"):
        load_mnist(tmp_path / "t10k-labels-idx1-ubyte.gz")
    (tmp_path / "digits.csv").write_text("0,1,2\n")
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path / "digits.csv")
    assert "not mnist.npz" in err.value.message and "four MNIST IDX files" in err.value.message
    assert "pickle" not in err.value.message
