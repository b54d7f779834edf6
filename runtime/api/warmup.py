"""Warm-up: every request path run once on synthetic drawings before a worker takes real requests.

A fresh worker's first canvas request used to take 40-100 ms against 3 ms for its tenth: Pillow loads its image
plugins on first use, NumPy and the preprocessing fill their caches, and LiteRT builds an interpreter per thread on
that thread's first predict. Each worker runs these requests through its own app, in every one of its threads, before
it accepts a connection; none of them counts in /metrics. The objects that then exist are frozen out of the garbage
collector's full passes.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import numpy as np
from flask import Flask
from PIL import Image, ImageDraw

from mnist_edge.runtime.api import jsonio
from mnist_edge.runtime.encode import encoded
from mnist_edge.runtime.api.state import KEY

log = logging.getLogger("mnist_edge.serve")

SIDE = 280  # the canvas' size
THREAD_WAIT_SECONDS = 120  # a guard for a thread that never comes, not a timing


def _drawing(*, width: int) -> np.ndarray:
    """A '7' drawn on a black 280 x 280 canvas in white, with a pen `width` px wide."""
    page = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(page).line([(80, 60), (200, 60), (120, 230)], fill=255, width=width, joint="curve")
    return np.asarray(page)


def _photo() -> bytes:
    """A JPEG photo of dark ink on unevenly lit paper (the photo path: light divided out, strokes kept)."""
    light = np.linspace(150, 230, SIDE, dtype=np.float32)[None, :].repeat(SIDE, axis=0)
    paper = np.clip(light - _drawing(width=14) * 0.5, 0, 255).astype(np.uint8)
    return encoded(np.stack([paper] * 3, axis=-1), "JPEG", quality=90)


def requests_to_warm(model_names: list[str]) -> list[tuple[str, str, bytes, str]]:
    """(method, path, body, content type) of each warm-up request: every decoder, every preprocessing branch, every model."""
    canvas = _drawing(width=18)
    png = encoded(canvas, "PNG", compress_level=1)  # as the canvas page sends it: one channel
    thin = encoded(_drawing(width=4), "PNG")  # a thin pen: widened before it is resized
    rgba = np.zeros((SIDE, SIDE, 4), np.uint8)
    rgba[..., 3] = canvas  # strokes on a transparent background: the alpha is the ink
    tensor = (canvas[::10, ::10].astype(np.float32) / 255).reshape(1, 28, 28, 1)
    infer = jsonio.dump({"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                     "data": tensor.ravel()}]})
    warm = [("GET", "/readyz", b"", ""), ("GET", "/healthz", b"", ""),
            ("POST", "/v1/predict", png, "image/png"),
            ("POST", "/v1/predict", thin, "image/png"),
            ("POST", "/v1/predict", encoded(rgba, "PNG"), "image/png"),
            ("POST", "/v1/predict", _photo(), "image/jpeg"),
            ("POST", "/v1/compare", png, "image/png")]  # every loaded model's predict
    warm += [("POST", f"/v2/models/{name}/infer", infer, "application/json") for name in model_names]
    return warm


def warm_up(app: Flask) -> None:
    """Run every warm-up request through `app` in this thread; a RuntimeError names one that did not answer 200."""
    shared = app.extensions[KEY]
    names = [slot.name for slot in shared.registry.loaded()]
    headers = {"Authorization": f"Bearer {shared.config.token}"} if shared.config.token else {}
    client = app.test_client()
    for method, path, body, content_type in requests_to_warm(names):
        response = client.open(path, method=method, data=body, content_type=content_type or None, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"warm-up {method} {path} answered {response.status_code}: {response.get_data()[:200]!r}")


@contextmanager
def _warming(app: Flask) -> Iterator[None]:
    """Metrics muted meanwhile; afterwards every object alive is moved out of the garbage collector's sight."""
    metrics = app.extensions[KEY].metrics
    metrics.muted = True
    try:
        yield
    finally:
        metrics.muted = False
    # A full collection walks all ~50,000 objects of Flask, NumPy and the runtimes: 15-60 ms, which would land on
    # some early request. Collected once here, then frozen, later collections look only at what requests make.
    gc.collect()
    gc.freeze()


def warm_threads(app: Flask, pool: Executor, threads: int) -> float:
    """Warm `app` up in each of the pool's `threads` threads at once (see `_warming`); the seconds it took."""
    started = time.perf_counter()
    # Each task waits for the others before it ends, so no thread takes two and every thread gets one.
    together = threading.Barrier(threads)

    def task() -> None:
        try:
            warm_up(app)
        finally:
            together.wait(THREAD_WAIT_SECONDS)

    with _warming(app):
        for future in [pool.submit(task) for _ in range(threads)]:
            future.result()
    return time.perf_counter() - started


def warm_here(app: Flask) -> float:
    """Warm `app` up in this one thread (a single-process server; see `_warming`); the seconds it took."""
    started = time.perf_counter()
    with _warming(app):
        warm_up(app)
    return time.perf_counter() - started
