"""A metrics folder that is read-only, not a folder, or full must not stop `serve`: /v1/predict and /readyz still work."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import requests
from api_fixtures import canvas_png
from test_workers import two_workers

from mnist_edge.runtime.api.workers import METRIC_FILE_BYTES, METRIC_FILES, MULTIPROC_ENV, metrics_dir, reserve_metric_files

ENDPOINTS = ("/healthz", "/readyz", "/v1/models", "/openapi.json", "/v2", "/v2/health/live", "/v2/health/ready",
             "/metrics")


@contextmanager
def tmpfs(path: Path, *, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small RAM file system mounted at `path` (root only): a disk that fills up, or one mounted read-only."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(folder: Path) -> Path:
    """Write into `folder` until its file system has no byte left; the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    with pytest.raises(OSError):
        filler.with_name("one-more").write_bytes(b"\0" * 4096)
    return filler


def test_reserve_metric_files_allocates_every_kind_on_disk(tmp_path):
    reserve_metric_files(tmp_path, 4242)
    for kind in METRIC_FILES:
        stat = (tmp_path / f"{kind}_4242.db").stat()
        assert stat.st_size == METRIC_FILE_BYTES and stat.st_blocks * 512 >= METRIC_FILE_BYTES  # blocks, not sparse
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        reserve_metric_files(tmp_path / "file", 4242)


@pytest.mark.parametrize("kind", ["under a file", "read-only", "full"])
def test_an_unusable_metrics_folder_means_per_worker_metrics_and_a_warning(tmp_path, monkeypatch, caplog, kind):
    if kind == "under a file":
        (tmp_path / "file").write_text("not a folder")
        folder = tmp_path / "file" / "metrics"
        context = nullcontext(folder)
    elif kind == "read-only":
        context = tmpfs(tmp_path / "ro", size="64k", read_only=True)  # chmod 0555 would not stop root
    else:
        context = tmpfs(tmp_path / "full", size="64k")
    with context as folder:
        if kind == "full":
            fill(folder)
        monkeypatch.setenv(MULTIPROC_ENV, str(folder))
        with caplog.at_level(logging.WARNING, logger="mnist_edge.serve"), metrics_dir() as path:
            assert path is None
            assert MULTIPROC_ENV not in os.environ  # prometheus_client, imported after this, keeps metrics in memory
        assert "METRICS PER WORKER ONLY" in caplog.text and str(folder) in caplog.text


def test_a_usable_metrics_folder_is_kept_and_a_private_one_removed(tmp_path, monkeypatch):
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "given"))
    with metrics_dir() as path:
        assert path == tmp_path / "given" and path.is_dir()
    assert path.is_dir()
    monkeypatch.delenv(MULTIPROC_ENV)
    with metrics_dir() as path:
        assert os.environ[MULTIPROC_ENV] == str(path)
    assert not path.exists() and MULTIPROC_ENV not in os.environ


def test_keep_metrics_in_process_stops_writing_files(tmp_path):
    script = """
from mnist_edge.runtime.api.metrics import Metrics, keep_metrics_in_process, multiprocess_mode
assert multiprocess_mode()
keep_metrics_in_process()
assert not multiprocess_mode()
metrics = Metrics()
metrics.started()
metrics.finished("/v1/predict", "POST", 200, 0.01)
print(metrics.render({}).decode())
"""
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert 'mnist_edge_requests_total{endpoint="/v1/predict",method="POST",status="200"} 1.0' in out
    assert list(tmp_path.iterdir()) == []


def _serves(url: str, image: bytes) -> None:
    response = requests.post(f"{url}/v1/predict", data=image, headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code == 200, response.text
    for path in ENDPOINTS:
        response = requests.get(f"{url}{path}", timeout=30, headers={"Connection": "close"})
        assert response.status_code == 200, (path, response.text)


def test_serve_with_a_metrics_folder_it_cannot_make_still_answers(shipped_models, known_digits, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    image = canvas_png(known_digits[0][0])
    for served in two_workers(tmp_path, shipped_models, {MULTIPROC_ENV: str(tmp_path / "file" / "metrics")}):
        _serves(served.url, image)
        assert "METRICS PER WORKER ONLY" in served.text()
        assert "mnist_edge_requests_total" in requests.get(f"{served.url}/metrics", timeout=30).text


def test_a_disk_that_fills_up_after_start_kills_no_worker(shipped_models, known_digits, tmp_path):
    image = canvas_png(known_digits[0][0])
    with tmpfs(tmp_path / "metrics", size="4m") as folder:
        for served in two_workers(tmp_path, shipped_models, {MULTIPROC_ENV: str(folder)}):
            workers = served.workers()
            filler = fill(folder)
            for _ in range(3):  # every endpoint adds series, so files grow past the pages touched before
                _serves(served.url, image)
            assert served.workers() == workers  # none died (a write to a sparse file on a full disk is SIGBUS)
            filler.unlink()


def test_a_worker_that_cannot_reserve_its_files_counts_alone(shipped_models, known_digits, tmp_path):
    image = canvas_png(known_digits[0][0])
    # Room for one worker's files (and the master's trial before the workers start), not for two.
    with tmpfs(tmp_path / "metrics", size=str(int(1.5 * len(METRIC_FILES) * METRIC_FILE_BYTES))) as folder:
        for served in two_workers(tmp_path, shipped_models, {MULTIPROC_ENV: str(folder)}):
            for _ in range(4):
                _serves(served.url, image)
            assert "KEPT APART" in served.text() and "METRICS PER WORKER ONLY" not in served.text()
