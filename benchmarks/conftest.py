"""Benchmark fixtures: the models folder (--models-dir), MNIST test digits as the oracle, the machine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.runtime.config import default_models_dir
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.preprocess import scale_pixels

DIGITS = 64  # the largest batch measured; its answers are checked against the MNIST labels


def pytest_addoption(parser: pytest.Parser) -> None:
    """--models-dir: the folder with manifest.json whose models are measured."""
    parser.addoption("--models-dir", type=Path, default=default_models_dir(),
                     help="folder with manifest.json (default: the shipped models)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`model`: every manifest artifact; `served_model`: those the server loads by default (no TensorFlow)."""
    artifacts = read_manifest(metafunc.config.getoption("models_dir"))["artifacts"]
    if "model" in metafunc.fixturenames:
        metafunc.parametrize("model", sorted(artifacts), scope="module")
    if "served_model" in metafunc.fixturenames:
        metafunc.parametrize("served_model", sorted(n for n, e in artifacts.items() if e["format"] != "keras"))


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add memory, OS, usable cores and library versions; drop the host name, which does not belong in a report."""
    from mnist_edge.benchmarks.machine import describe

    machine_info.pop("node", None)
    machine_info["mnist_edge"] = describe()


@pytest.fixture(scope="session")
def models_dir(request: pytest.FixtureRequest) -> Path:
    """The folder whose models are measured."""
    return request.config.getoption("models_dir")


@pytest.fixture(scope="session")
def mnist():
    """MNIST from $MNIST_DATA (`mnist-edge bench --data` sets it); skipped with the reason when it is not set."""
    from mnist_edge.train.data import ENV_VAR, load_mnist

    if not os.environ.get(ENV_VAR):
        pytest.skip(f"{ENV_VAR} is not set: the answers are checked against MNIST labels")
    return load_mnist(os.environ[ENV_VAR])


@pytest.fixture(scope="session")
def digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The first 64 MNIST test digits, preprocessed (float32 64 x 28 x 28 x 1), and their labels."""
    return scale_pixels(mnist.x_test[:DIGITS]), mnist.y_test[:DIGITS].astype(np.int64)

