"""The edge install: `pip install .[serve]` in its own venv (made by .ci/run) serves the shipped model, no TensorFlow."""

from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest
import requests

from mnist_edge.train.drawn import draw, to_png



@pytest.fixture(scope="module")
def edge_server(serve_venv, tmp_path_factory):
    """`mnist-edge serve` from the serve-only venv, on a port it picks, started from a folder outside the repo."""
    log_path = tmp_path_factory.mktemp("edge") / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([serve_venv / "bin" / "mnist-edge", "serve", "--port", "0"], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=log_path.parent)
    try:
        deadline = time.monotonic() + 90
        while not (match := re.search(r"serving on (http://\S+)", log_path.read_text())):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "server not ready in 90 s:\n" + log_path.read_text()
            time.sleep(0.2)
        yield match.group(1), process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_venv_has_no_tensorflow(serve_venv):
    for module in ("tensorflow", "keras", "tf2onnx"):
        found = subprocess.run([serve_venv / "bin" / "python", "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0, f"{module} is importable in the edge install"


def test_installed_package_is_not_the_checkout(serve_venv):
    where = subprocess.run([serve_venv / "bin" / "python", "-c", "import mnist_edge.runtime as r; print(r.__file__)"],
                           capture_output=True, text=True, check=True, cwd="/")
    assert "site-packages" in where.stdout  # a real install, so the shipped models came as package data


def test_edge_server_reads_canvas_drawings(edge_server, mnist):
    url, _ = edge_server
    models = requests.get(f"{url}/v1/models", timeout=10).json()
    assert {m["name"] for m in models["models"] if m["loaded"]} >= {"tflite-int8", "onnx-int8", "onnx-fp32"}
    assert all(m["format"] != "keras" for m in models["models"])
    rng = np.random.default_rng(7)
    right = 0
    for digit, label in zip(mnist.x_test[:20], mnist.y_test[:20]):
        drawing, _ = draw(digit, rng)
        response = requests.post(f"{url}/v1/predict", data=to_png(drawing),
                                 headers={"Content-Type": "image/png"}, timeout=10)
        assert response.status_code == 200, response.text
        right += response.json()["digit"] == label
    assert right >= 19


def test_edge_server_answers_open_inference_protocol(edge_server, mnist):
    url, _ = edge_server
    request = {"inputs": [{"name": "image", "shape": [4, 28, 28], "datatype": "UINT8",
                           "data": mnist.x_test[:4].flatten().tolist()}]}
    response = requests.post(f"{url}/v2/models/onnx-int8/infer", json=request, timeout=10)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert output["shape"] == [4, 10] and output["datatype"] == "FP32"
    assert np.argmax(np.reshape(output["data"], (4, 10)), axis=1).tolist() == mnist.y_test[:4].tolist()
