"""The server as a client sees it: /v1/predict latency per backend, cold start and memory.

Run: MNIST_DATA=../shared/data/mnist .venv/bin/python -m pytest benchmarks/test_server_benchmark.py --benchmark-only
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from mnist_edge.runtime.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.server import start_background
from mnist_edge.train.drawn import draw, to_png

BACKENDS = ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")


@pytest.fixture(scope="module")
def server():
    running = start_background(create_app(ServeConfig()), threads=4)
    yield running
    running.close()


@pytest.fixture(scope="module")
def canvas_png() -> bytes:
    # A synthetic "0" drawn on a 280 x 280 canvas, so the benchmark needs no data set.
    ys, xs = np.mgrid[0:28, 0:28]
    ring = (np.clip(1 - np.abs(np.hypot((ys - 14) / 9, (xs - 14) / 6) - 1) * 4, 0, 1) * 255).astype(np.uint8)
    return to_png(draw(ring, np.random.default_rng(0))[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_http_predict(benchmark, server, canvas_png, backend):
    benchmark.group = "HTTP /v1/predict, 280x280 canvas PNG"
    with requests.Session() as http:  # keep-alive, as a browser or the UI's client would
        def post() -> dict:
            response = http.post(f"{server.url}/v1/predict", params={"backend": backend}, data=canvas_png,
                                 headers={"Content-Type": "image/png"}, timeout=10)
            response.raise_for_status()
            return response.json()

        body = benchmark(post)
    assert body["backend"] == backend and body["digit"] == 0


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_cold_start_and_memory(benchmark, tmp_path):
    """Process start to 'serving on' with every model loaded; resident memory once ready."""
    benchmark.group = "cold start"
    readings = []

    def start() -> None:
        log = tmp_path / "serve.log"
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-m", "mnist_edge.cli", "serve", "--port", "0"],
                                       stdout=out, stderr=subprocess.STDOUT)
        try:
            while "serving on" not in log.read_text():
                assert process.poll() is None, log.read_text()
                time.sleep(0.01)
            readings.append(_rss_mb(process.pid))
        finally:
            process.terminate()
            process.wait(timeout=30)

    benchmark.pedantic(start, rounds=3, iterations=1)
    benchmark.extra_info["rss_mb"] = round(max(readings), 1)
    assert max(readings) < 400
