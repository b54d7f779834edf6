"""Warm workers: a fresh worker answers its first canvas PNG about as fast as its tenth, and warm-up leaves no trace."""

from __future__ import annotations

import io
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image
from test_workers import START_SECONDS, serve

from mnist_edge.runtime.api import warmup
from mnist_edge.runtime.api.warmup import requests_to_warm, warm_here, warm_threads

FRESH_SERVERS = 3  # each a fresh single worker; medians over them keep one unlucky stall on a busy machine out
ANSWERS = 12  # requests per server: the first, and the ninth to twelfth as "the tenth"
RATIO = 3.0  # the bound: the first request no more than 3x the tenth ...
SLACK_MS = 5.0  # ... plus this, for the scheduler of a shared 2-core machine (an unwarmed first request took 40+ ms)


def canvas_png(digit: np.ndarray) -> bytes:
    """A 28 x 28 MNIST digit as the canvas page sends it: white ink on black, 280 x 280, one channel, fast PNG."""
    page = Image.new("L", (280, 280), 0)
    page.paste(Image.fromarray(digit).resize((196, 196), Image.Resampling.BILINEAR), (50, 30))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def server_ms(url: str, image: bytes) -> float:
    """The server's own time for one /v1/predict (timings_ms.total), on a fresh connection."""
    response = requests.post(f"{url}/v1/predict", data=image, timeout=START_SECONDS,
                             headers={"Content-Type": "image/png", "Connection": "close"})
    assert response.status_code == 200, response.text
    return response.json()["timings_ms"]["total"]


def test_a_fresh_worker_answers_its_first_canvas_as_fast_as_its_tenth(shipped_models, known_digits, tmp_path):
    image = canvas_png(known_digits[0][0])
    firsts, tenths = [], []
    for index in range(FRESH_SERVERS):
        folder = tmp_path / str(index)
        folder.mkdir()
        running = serve(folder, shipped_models, "--workers", "1")  # the last --workers wins: one worker takes them all
        try:
            url = running.wait_for(r"serving on (http://\S+) \(1 workers").group(1)
            times = [server_ms(url, image) for _ in range(ANSWERS)]
        finally:
            running.stop()
        firsts.append(times[0])
        tenths.append(statistics.median(times[8:]))
    first, tenth = statistics.median(firsts), statistics.median(tenths)
    print(f"first request {firsts} ms, tenth {tenths} ms; medians {first:.2f} / {tenth:.2f}")
    assert first <= RATIO * tenth + SLACK_MS, f"first {firsts} ms against tenth {tenths} ms"


def test_warm_up_runs_every_request_in_every_thread_and_counts_none(app):
    metrics = app.extensions["mnist_edge"].metrics
    before = metrics.render({}).decode()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="warm") as pool:
        assert warm_threads(app, pool, 2) > 0
        assert warm_here(app) > 0
    assert metrics.render({}).decode() == before and not metrics.muted


def test_warm_up_covers_every_loaded_model_and_each_decoder(loaded_names):
    warm = requests_to_warm(loaded_names)
    paths = [path for _, path, _, _ in warm]
    assert all(f"/v2/models/{name}/infer" in paths for name in loaded_names)
    assert "/v1/compare" in paths  # every loaded model's predict from a canvas
    kinds = {Image.open(io.BytesIO(body)).format + Image.open(io.BytesIO(body)).mode
             for _, path, body, _ in warm if path.startswith("/v1/")}
    assert {"PNGL", "PNGRGBA", "JPEGRGB"} <= kinds


@pytest.mark.parametrize("threads", [1, 2])
def test_each_thread_of_the_pool_warms_up_once(app, threads, monkeypatch):
    seen: list[str] = []
    original = warmup.warm_up

    def recorded(app_) -> None:
        seen.append(threading.current_thread().name)
        original(app_)

    monkeypatch.setattr(warmup, "warm_up", recorded)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        warm_threads(app, pool, threads)
    assert len(seen) == threads == len(set(seen))
