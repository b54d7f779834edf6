"""The server as a client sees it: /v1/predict latency per model, cold start to ready and memory.

Run: MNIST_DATA=../shared/data/mnist pytest benchmarks/test_server_benchmark.py -o addopts= --benchmark-only
(`mnist-edge bench` adds the multi-connection load phase with wrk.)
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

from mnist_edge.benchmarks.background import start_background
from mnist_edge.benchmarks.serve_process import running_server, tree_memory_mb
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.train.drawn import draw, to_png


@pytest.fixture(scope="module")
def server(models_dir):
    running = start_background(create_app(ServeConfig(models_dir=models_dir)), threads=4)
    yield running
    running.close()


@pytest.fixture(scope="module")
def canvas_png() -> bytes:
    # A synthetic "0" drawn on a 280 x 280 canvas, so this file needs no data set.
    ys, xs = np.mgrid[0:28, 0:28]
    ring = (np.clip(1 - np.abs(np.hypot((ys - 14) / 9, (xs - 14) / 6) - 1) * 4, 0, 1) * 255).astype(np.uint8)
    return to_png(draw(ring, np.random.default_rng(0))[0])


def test_http_predict(benchmark, server, canvas_png, served_model):
    benchmark.group = "HTTP /v1/predict, 280x280 canvas PNG, one connection"
    benchmark.extra_info.update(model=served_model, batch=1)
    with requests.Session() as http:  # keep-alive, as a browser or the UI's client would
        def post() -> dict:
            response = http.post(f"{server.url}/v1/predict", params={"backend": served_model}, data=canvas_png,
                                 headers={"Content-Type": "image/png"}, timeout=10)
            response.raise_for_status()
            return response.json()

        body = benchmark(post)
    assert body["backend"] == served_model and body["digit"] == 0


def test_cold_start_and_memory(benchmark, models_dir, tmp_path):
    """`mnist-edge serve` process start to /readyz answering 200; memory of its process tree once ready."""
    benchmark.group = "cold start to ready"
    readings = []

    def start() -> None:
        with running_server(tmp_path / "serve.log", models_dir=models_dir) as running:
            readings.append(tree_memory_mb(running.process.pid))

    benchmark.pedantic(start, rounds=3, iterations=1)
    largest = max(readings, key=lambda r: r["rss_mb"])
    benchmark.extra_info.update(largest)
    assert largest["processes"] >= 1
    assert 0 < largest["rss_mb"] < 400 * largest["processes"]  # each process holds a few small models, not TF
