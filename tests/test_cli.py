"""The mnist-edge command: a happy path from training to a Triton repository, and every error as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnist_edge.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mnist-edge: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_train_then_convert(mnist, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MNIST_DATA", raising=False)  # --data must be enough
    data = mnist.source
    code, out, _ = run(capsys, "train", "--data", data, "--limit", "6000", "--epochs", "2", "--no-augment",
                       "--out", str(tmp_path / "m"))
    assert code == 0 and "test accuracy" in out
    code, out, err = run(capsys, "convert", "--models", str(tmp_path / "m"), "--data", data,
                       "--triton", str(tmp_path / "triton"))
    assert code == 0 and "onnx-int8" in out, err
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["training"]["config"]["epochs"] == 2 and manifest["training"]["train_images"] == 6000
    assert (tmp_path / "triton" / "onnx-fp32" / "1" / "model.onnx").is_file()
    code, _, err = run(capsys, "convert", "--models", str(tmp_path / "m"), "--data", data, "--out", str(tmp_path / "o"))
    assert code == 0, err
    published = {p.name for p in (tmp_path / "o").iterdir()}
    assert {"manifest.json", "model.keras", "model_int8.tflite", "training.json", "confusion_matrix.png"} <= published


def test_missing_data_path(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "does not exist" in one_line_error(err)


def test_corrupt_data_folder(capsys, tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05garbage")
    code, _, err = run(capsys, "convert", "--models", str(tmp_path), "--data", str(tmp_path))
    assert code == 1 and "mnist-edge: error:" in one_line_error(err)


def test_convert_without_a_trained_model(capsys, tmp_path, mnist):
    code, _, err = run(capsys, "convert", "--models", str(tmp_path), "--data", mnist.source)
    assert code == 1 and "run `mnist-edge train` first" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_unknown_architecture(capsys, tmp_path, mnist):
    code, _, err = run(capsys, "train", "--data", mnist.source, "--arch", "resnet", "--out", str(tmp_path))
    assert code == 1 and "valid: cnn, seed" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_bad_epochs_is_a_usage_error(capsys):
    code, _, err = run(capsys, "train", "--epochs", "0")
    assert code == 2 and "--epochs must be at least 1" in err


def test_console_script_exit_status_and_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "train", "--data", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mnist-edge: error: MNIST path")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [[], ["train", "--epochs", "many"], ["fly"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
