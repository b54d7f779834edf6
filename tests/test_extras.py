"""Each extra installed alone runs its own commands: `.[train]` trains and converts, `.[serve]` serves and hints.

The venvs are .ci/run's (tests/conftest.py `installed_venv`): one per extra, each with that extra alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.runtime.manifest import sha256_file
from mnist_edge.train.fit import TrainConfig, not_digits_per_generator
from mnist_edge.train.negatives import TRAINING


def mnist_edge(venv: Path, *argv: str, cwd: Path, env: dict | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the venv's `mnist-edge` from a folder outside the checkout, so the installed package is what runs."""
    return subprocess.run([venv / "bin" / "mnist-edge", *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def importable(venv: Path, module: str) -> bool:
    return subprocess.run([venv / "bin" / "python", "-c", f"import {module}"], capture_output=True).returncode == 0


def test_train_extra_has_no_web_stack(train_venv):
    assert importable(train_venv, "tensorflow") and importable(train_venv, "onnxruntime")
    assert not importable(train_venv, "flask") and not importable(train_venv, "waitress")


@pytest.mark.parametrize("command", ["train", "convert", "publish"])
def test_train_extra_help(train_venv, command, tmp_path):
    result = mnist_edge(train_venv, command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"usage: mnist-edge {command}" in result.stdout and "examples:" in result.stdout


def test_train_extra_trains_and_converts_into_a_run(train_venv, mnist, shipped_models, tmp_path):
    """The CLI end to end in the train-only install: a run folder, every artifact, a Triton export, models/ untouched."""
    shipped = sha256_file(shipped_models / "manifest.json")
    # A smaller mnist.npz: the install is under test, not the model. Half the test set keeps the conversion gate's
    # is-digit agreement of this 2-epoch model above its 93 % floor (with 1,000 test digits, the 100 drawings of each
    # non-digit generator weigh more, and it fell below: 88 % when there were eight generators).
    small = tmp_path / "mnist.npz"
    np.savez(small, x_train=mnist.x_train[:4000], y_train=mnist.y_train[:4000], x_test=mnist.x_test[:5000],
             y_test=mnist.y_test[:5000])
    env = {"MNIST_DATA": str(small), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The seed tutorial's comparison recipe, which is not distilled from stroke views: that path runs here. Its int8 files
    # make the not-a-digit decision as Keras does (99.85 % agreement; the gate checks it). The default network trained
    # this way for 2 epochs is too raw for its int8 files: 90.7 %, under the gate's 93 % floor.
    trained = mnist_edge(train_venv, "train", "--epochs", "2", "--limit", "4000", "--arch", "seed", "--no-augment",
                         cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "test accuracy" in trained.stdout
    (run,) = (tmp_path / "runs").iterdir()
    assert f"run folder: {Path('runs') / run.name}" in trained.stdout
    converted = mnist_edge(train_venv, "convert", "--triton", str(tmp_path / "triton"), cwd=tmp_path, env=env)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert f"next: mnist-edge publish {Path('runs') / run.name}" in converted.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"tflite-int8", "onnx-int8", "keras"} <= set(manifest["artifacts"])
    # 3,600 digits (400 held back to calibrate) and 15 % as many non-digits, shared by the training generators.
    not_digits = len(TRAINING) * not_digits_per_generator(3600, TrainConfig())
    assert manifest["training"]["train_images"] == 3600 + not_digits + sum(manifest["training"]["cut_pieces"].values())
    assert {key: manifest["training"]["config"][key] for key in ("arch", "epochs", "distill")} == {
        "arch": "seed", "epochs": 2, "distill": False}
    assert {"model.keras", "model_int8.tflite", "training.json", "confusion_matrix.png"} <= {p.name for p in run.iterdir()}
    assert (tmp_path / "triton" / "onnx-fp32" / "1" / "model.onnx").is_file()
    assert sha256_file(shipped_models / "manifest.json") == shipped  # nothing reached the served models


def test_train_extra_serve_is_an_install_hint(train_venv, tmp_path):
    result = mnist_edge(train_venv, "serve", "--port", "0", cwd=tmp_path, timeout=120)  # the hint, not a server
    assert result.returncode == 1
    assert result.stderr.strip().endswith('pip install "mnist-edge[serve]"') and "Traceback" not in result.stderr


def test_serve_extra_help(serve_venv, tmp_path):
    result = mnist_edge(serve_venv, "serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout and "examples:" in result.stdout


@pytest.mark.parametrize(("command", "module"), [("train", "tensorflow"), ("convert", "tensorflow")])
def test_serve_extra_train_is_a_one_line_hint(serve_venv, command, module, mnist, tmp_path):
    (tmp_path / "runs" / "20250101-000000").mkdir(parents=True)
    (tmp_path / "runs" / "20250101-000000" / "model.keras").write_bytes(b"")
    result = mnist_edge(serve_venv, command, "--data", mnist.source, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"mnist-edge: error: `{command}` needs the train install (no module {module!r}): "
        'pip install "mnist-edge[train]"'
    ], result.stderr


def test_readmes_run_command_install_brings_the_product_up(ui_venv, tmp_path):
    from browser import Process, free_port, port_closed

    no_tf = subprocess.run([ui_venv / "bin" / "python", "-c", "import tensorflow"], capture_output=True)
    assert no_tf.returncode != 0  # the product runs without TensorFlow
    api, ui = free_port(), free_port()
    process = Process([str(ui_venv / "bin" / "mnist-edge"), "up", "--api-port", str(api), "--ui-port", str(ui)])
    try:
        assert f"open http://127.0.0.1:{ui} to draw" in process.wait_for("mnist-edge is up", timeout=180)
        assert process.stop() == 0
        assert port_closed(api) and port_closed(ui)
    finally:
        process.kill_group()
