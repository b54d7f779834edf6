"""MNIST loading: IDX files (gzip or raw) or mnist.npz, checked before anything trains on them."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge.runtime.errors import DataError

ENV_VAR = "MNIST_DATA"
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz").expanduser()


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: uint8 images N x 28 x 28 (white ink on black), uint8 labels N."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Mnist:
        """The first n_train training and n_test test examples (for quick runs and tests)."""
        return Mnist(self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test], self.y_test[:n_test], self.source)


def _read(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:  # gzip raises BadGzipFile (an OSError) or EOFError when cut short
        raise DataError(f"cannot read {path}: {exc}") from exc


def parse_idx(raw: bytes, *, magic: int, name: str) -> np.ndarray:
    """Decode one IDX file's bytes into a uint8 array, checking its magic and its length."""
    if len(raw) < 8:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{name}: IDX magic 0x{found:08x}, expected 0x{magic:08x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{name}: {len(raw)} bytes, but its header {dims} needs {expected} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {stem}.gz or {stem}")


def _check(images: np.ndarray, labels: np.ndarray, split: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{split} images have shape {images.shape}, expected N x 28 x 28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{split}: {len(images)} images but labels of shape {labels.shape}")
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(f"{split}: dtypes {images.dtype}/{labels.dtype}, expected uint8")
    if len(labels) and labels.max() > 9:
        raise DataError(f"{split} labels range up to {labels.max()}, expected 0..9")


def load_idx_folder(folder: Path) -> Mnist:
    """Load the four IDX files (gzip or raw) from one folder."""
    arrays = []
    for split, (images_stem, labels_stem) in SPLITS.items():
        images_path, labels_path = _find(folder, images_stem), _find(folder, labels_stem)
        images = parse_idx(_read(images_path), magic=IMAGES_MAGIC, name=images_path.name)
        labels = parse_idx(_read(labels_path), magic=LABELS_MAGIC, name=labels_path.name)
        _check(images, labels, split)
        arrays += [images, labels]
    return Mnist(*arrays, source=str(folder))


def load_npz(path: Path) -> Mnist:
    """Load Keras' mnist.npz (x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as npz:
            arrays = [npz[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read {path} as mnist.npz: {exc}") from exc
    _check(arrays[0], arrays[1], "train")
    _check(arrays[2], arrays[3], "test")
    return Mnist(*arrays, source=str(path))


def _not_npz(path: Path) -> str:
    """Why a single file that is not an .npz archive cannot be MNIST, and what to pass instead."""
    stems = {stem for pair in SPLITS.values() for stem in pair}
    if path.name.removesuffix(".gz") in stems:
        return (f"{path} is one of MNIST's four IDX files: pass the folder that holds all four "
                f"(--data {path.parent})")
    return f"{path} is not mnist.npz: pass a folder of the four MNIST IDX files (gzip or raw) or a mnist.npz"


def load_path(path: str | Path) -> Mnist:
    """Load MNIST from a folder of IDX files, a folder holding mnist.npz, or an .npz file."""
    path = Path(path).expanduser()
    if path.is_file():
        # An .npz is a zip archive; anything else would reach np.load's pickle refusal, which explains nothing.
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise DataError(_not_npz(path))
        return load_npz(path)
    if path.is_dir():
        return load_npz(path / "mnist.npz") if (path / "mnist.npz").is_file() else load_idx_folder(path)
    raise DataError(f"MNIST path {path} does not exist")


def load_mnist(data: str | Path | None = None) -> Mnist:
    """Load MNIST from, in order: `data`, $MNIST_DATA, Keras' cache; never from the network."""
    if data:
        return load_path(data)
    if os.environ.get(ENV_VAR):
        return load_path(os.environ[ENV_VAR])
    if KERAS_CACHE.is_file():
        return load_npz(KERAS_CACHE)
    # No download: a device is often offline, and the serve-only install has no Keras to download with.
    raise DataError(f"MNIST not found: pass --data PATH (a folder of the four IDX files, gzip or raw, or a "
                    f"mnist.npz) or set {ENV_VAR}=PATH")
