"""Shared fixtures: MNIST from $MNIST_DATA, a tiny model trained and converted once per session, the shipped models."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The API fixtures (app, client, loaded_names, confident_digits) live beside the helpers they use.
pytest_plugins = ["api_fixtures"]

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO / "models"


def pytest_configure(config) -> None:
    """A relative MNIST_DATA (README's `MNIST_DATA=../shared/data/mnist`) means from where pytest started: made
    absolute once, so tests that change folder or start subprocesses elsewhere still find it."""
    if os.environ.get("MNIST_DATA"):
        os.environ["MNIST_DATA"] = str(Path(os.environ["MNIST_DATA"]).resolve())
    # Apps and servers the tests start store corrections in their default place: a private folder, not the user's.
    os.environ.pop("STATE_DIRECTORY", None)
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="mnist-edge-test-data-")


def pytest_unconfigure(config) -> None:
    """Remove the private data folder pytest_configure made."""
    shutil.rmtree(os.environ.get("XDG_DATA_HOME", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST data set; tests that need it fail loudly in CI and skip with the reason elsewhere."""
    from mnist_edge.train.data import ENV_VAR, load_mnist

    path = os.environ.get(ENV_VAR)
    if not path:
        if os.environ.get("CI"):
            pytest.fail(f"{ENV_VAR} is not set; CI must point it at the MNIST IDX folder (../shared/data/mnist)")
        pytest.skip(f"{ENV_VAR} is not set: export {ENV_VAR}=/path/to/mnist (a folder of the four IDX files)")
    return load_mnist(path)


@pytest.fixture(scope="session")
def tiny_models(mnist, tmp_path_factory) -> Path:
    """A model trained for seconds on a slice of MNIST, converted to every format (not the shipped one)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mnist_edge.convert.pipeline import convert
    from mnist_edge.train.distill import DistillConfig
    from mnist_edge.train.fit import TrainConfig, save, train

    out = tmp_path_factory.mktemp("tiny_models")
    # Small report sets and one epoch of distillation: seconds.
    cfg = TrainConfig(epochs=2, drawn_test=300, test_negatives=40, distill_config=DistillConfig(epochs=1))
    model, report = train(mnist.subset(n_train=4000), cfg, verbose=0)
    save(model, report, out)
    convert(out, mnist.subset(n_train=4000, n_test=2000), not_digits=50)
    return out


@pytest.fixture(scope="session")
def shipped_models() -> Path:
    """The committed default model in every format (what a fresh device serves)."""
    assert (SHIPPED_MODELS / "manifest.json").is_file(), "models/manifest.json is missing: run mnist-edge convert"
    return SHIPPED_MODELS


def installed_venv(variable: str, extras: str) -> Path:
    """A venv .ci/run built with only `pip install ".[extras]"`, found through `variable`; CI must have it."""
    path = os.environ.get(variable)
    if not path:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} is not set; .ci/run builds the .[{extras}] venv and exports it")
        pytest.skip(f"{variable} is not set: python3 -m venv /tmp/v && /tmp/v/bin/pip install -e '.[{extras}]', "
                    f"then export {variable}=/tmp/v")
    return Path(path)


@pytest.fixture(scope="session")
def serve_venv() -> Path:
    """The edge install: only `pip install ".[serve]"` (MNIST_EDGE_SERVE_VENV)."""
    return installed_venv("MNIST_EDGE_SERVE_VENV", "serve")


@pytest.fixture(scope="session")
def ui_venv() -> Path:
    """README's run command: only `pip install -e ".[serve,ui]"` (MNIST_EDGE_UI_VENV)."""
    return installed_venv("MNIST_EDGE_UI_VENV", "serve,ui")


@pytest.fixture(scope="session")
def train_venv() -> Path:
    """The train extra: only `pip install ".[train]"` (MNIST_EDGE_TRAIN_VENV)."""
    return installed_venv("MNIST_EDGE_TRAIN_VENV", "train")
