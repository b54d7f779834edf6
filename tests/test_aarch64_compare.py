"""scripts/aarch64_compare.py, the answer check of the aarch64 run, against real servers on this machine."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "aarch64_compare.py"
MODELS = ["tflite-int8", "onnx-int8"]  # two runtimes are enough to check the comparison; every model is CI's run


def _load_script():
    spec = importlib.util.spec_from_file_location("aarch64_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


compare = _load_script()


@pytest.fixture(scope="module")
def reference(shipped_models):
    """The shipped models behind waitress: the x86 side."""
    server = start_background(create_app(ServeConfig(models_dir=shipped_models, models=MODELS)), threads=4)
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def strict_int8(shipped_models, tmp_path_factory):
    """The same model files, but tflite-int8 calls more drawings not a digit: a server that answers differently."""
    folder = tmp_path_factory.mktemp("strict") / "models"
    shutil.copytree(shipped_models, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"]["tflite-int8"]["threshold"] = 0.999
    (folder / "manifest.json").write_text(json.dumps(manifest))
    server = start_background(create_app(ServeConfig(models_dir=folder, models=MODELS)), threads=4)
    yield server.url
    server.close()


@pytest.mark.mnist
def test_two_servers_on_the_same_models_agree_on_every_drawing(mnist, reference, capsys):
    code = compare.main(["--guest", reference, "--host", reference, "--count", "12", "--not-digits", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith(tuple(MODELS))]
    assert len(lines) == 2 and all("22/22 drawings" in line and line.endswith(": ok") for line in lines), out


@pytest.mark.mnist
def test_a_different_is_digit_decision_fails_the_check_naming_the_model(mnist, reference, strict_int8, capsys):
    code = compare.main(["--guest", strict_int8, "--host", reference, "--count", "12", "--not-digits", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "onnx-int8: 22/22" in captured.out and "tflite-int8:" in captured.out and "DIFFERENT" in captured.out
    error = captured.err.strip()
    assert error.count("\n") == 0 and "1 of 2 models answered differently; tflite-int8: drawing" in error


def test_a_digit_differs_only_where_either_server_calls_the_drawing_a_digit():
    p = np.full(10, 0.1)
    assert compare.differ((4, True, p), (4, False, p))  # the decision differs
    assert compare.differ((4, True, p), (0, True, p)) and compare.differ((4, False, p), (0, True, p))
    assert not compare.differ((4, True, p), (4, True, p))
    assert not compare.differ((4, False, p), (0, False, p))  # no digit either way: its digit is int8 rounding


def test_models_from_other_files_are_refused_before_any_drawing_is_sent():
    with pytest.raises(compare.CheckFailed, match="sha256"):
        compare.same_models({"onnx-int8": "aa", "tflite-int8": "bb"}, {"onnx-int8": "aa", "tflite-int8": "cc"})
    with pytest.raises(compare.CheckFailed, match="different models"):
        compare.same_models({"onnx-int8": "aa"}, {"onnx-int8": "aa", "tflite-int8": "bb"})
    assert compare.same_models({"b": "1", "a": "2"}, {"a": "2", "b": "1"}) == ["a", "b"]


@pytest.mark.parametrize("style", ["transparent", "dark-on-light", "light-on-dark"])
def test_every_drawing_style_reaches_the_page_as_white_ink_on_black(style):
    ink = np.zeros((280, 280), dtype=np.uint8)
    ink[100:180, 130:150] = 255
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    if style == "transparent":
        rgba[:, :, 2], rgba[:, :, 3] = ink // 2, ink  # a dark blue pen on a see-through canvas
    else:
        grey = 255 - ink if style == "dark-on-light" else ink
        rgba[:, :, :3], rgba[:, :, 3] = grey[:, :, None], 255
    page = compare.on_page(rgba)
    assert page.shape == (280, 280, 4) and (page[:, :, 3] == 255).all()
    assert (page[:, :, 0] == ink).all() and (page[:, :, 1] == ink).all()
