"""`mnist-edge bench`: the quick run end to end (every suite once, answers checked; 1 s wrk cells), the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from mnist_edge.benchmarks.load import run_load
from mnist_edge.benchmarks.report import write_report
from mnist_edge.benchmarks.server import tree_memory_mb
from mnist_edge.runtime.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.server import start_background

SUITE_TESTS = ("test_inference", "test_keras_predict_seed", "test_normalize_canvas_rgba", "test_http_predict",
               "test_cold_start_and_memory")


@pytest.fixture(scope="module")
def quick_run(mnist, tmp_path_factory):
    """`mnist-edge bench --quick` once, in a child process as CI runs it."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "bench", "--quick", "--out", str(out),
                           "--data", mnist.source], capture_output=True, text=True, timeout=600)
    return done, out


def test_quick_bench_runs_every_suite_and_checks_answers(quick_run):
    done, out = quick_run
    assert done.returncode == 0, done.stdout + done.stderr + (out / "logs" / "pytest.log").read_text()
    results = json.loads((out / "results.json").read_text())
    suites = results["suites"]
    assert results["quick"] and suites["exit_code"] == 0 and suites["failures"] == suites["errors"] == 0
    names = {case.get("name").partition("[")[0] for case in ET.parse(out / "logs" / "suites.xml").iter("testcase")}
    assert set(SUITE_TESTS) <= names
    # 7 models x 3 batch sizes, each a test that checked its answers against MNIST labels
    assert sum(1 for case in ET.parse(out / "logs" / "suites.xml").iter("testcase")
               if case.get("name").startswith("test_inference[")) == 3 * len(results["models"]["artifacts"])
    assert not (out / "benchmark.json").exists()  # --benchmark-disable times nothing


def test_quick_bench_load_phase(quick_run):
    _, out = quick_run
    http = json.loads((out / "results.json").read_text())["http"]
    assert http["cold_start_s"] > 0 and http["memory_ready"]["rss_mb"] > 0
    cells = {(c["request"], c["connections"]): c for c in http["cells"]}
    assert len(cells) == 8 and {c for _, c in cells} == {1, 8}
    for (request, _), cell in cells.items():
        if request.startswith("binary"):  # the binary extension may be missing from a server: a failed row, no crash
            assert cell["status"] == "ok" or cell["reason"], cell
            continue
        assert cell["status"] == "ok", cell
        assert cell["requests"] > 0 and cell["latency_ms"]["p99"] >= cell["latency_ms"]["p50"] > 0


def test_quick_bench_report(quick_run):
    _, out = quick_run
    md = (out / "results.md").read_text()
    assert "## HTTP load (wrk)" in md and "`/v2/models/tflite-int8/infer`" in md and "| ok |" in md
    for chart in ("size_accuracy.png", "http.png"):
        with Image.open(out / chart) as image:
            assert image.format == "PNG" and image.width > 300
        assert f"]({chart})" in md


def _bench(name: str, group: str, median: float, **extra) -> dict:
    stats = {"min": median, "max": median, "mean": median, "stddev": 0.0, "median": median, "iqr": 0.0,
             "rounds": 5, "ops": 1 / median}
    return {"name": name, "group": group, "params": {}, "extra_info": extra, "stats": stats}


def test_report_tables_and_charts_from_timed_results(tmp_path):
    """A timed run's JSON: the speed-up column and the latency charts come out of it (figures made up, exact)."""
    results = {
        "created": "2026-01-01T00:00:00+00:00", "quick": False, "load_average_at_start": 3.5,
        "machine": {"cpu_model": "Test CPU", "usable_cores": 2, "memory_gb": 4.0, "os": "Linux", "architecture": "x",
                    "python": "3.11", "libraries": {"onnxruntime": "1.0"}},
        "models": {"default": "a", "artifacts": {"a": {"format": "tflite", "precision": "int8", "size_bytes": 90_000,
                                                       "accuracy": 0.99}}},
        "suites": {"tests": 3, "failures": 0, "errors": 0, "skipped": 0, "problems": [], "benchmarks": [
            _bench("test_keras_predict_seed", "baseline", 0.010, baseline=True, batch=1),
            _bench("test_inference[a-1]", "inference, batch 1", 0.0001, model="a", format="tflite",
                   precision="int8", batch=1),
            _bench("test_inference[a-64]", "inference, batch 64", 0.0032, model="a", format="tflite",
                   precision="int8", batch=64),
            _bench("test_normalize_canvas_rgba", "", 0.0005)]},
        "http": {"flags": ["--host", "127.0.0.1", "--port", "1", "--workers", "2"], "model": "a", "cold_start_s": 0.5,
                 "seconds_per_cell": 1, "memory_ready": {"processes": 3, "rss_mb": 200.0, "pss_mb": 90.0},
                 "memory_after_load": {"processes": 3, "rss_mb": 210.0, "pss_mb": 95.0},
                 "cells": [{"endpoint": "/v2/models/a/infer", "request": "binary", "connections": 1,
                            "status": "failed", "reason": "HTTP 400: not supported"}]},
    }
    written = {p.name for p in write_report(results, tmp_path)}
    assert written == {"results.md", "latency.png", "speedup.png", "size_accuracy.png"}  # no HTTP row to chart
    md = (tmp_path / "results.md").read_text()
    assert "| a | tflite | int8 | 1 | 0.100 | 100.0 | 100x |" in md  # 10 ms / 0.1 ms per image
    assert "| a | tflite | int8 | 64 | 3.200 | 50.0 | 200x |" in md  # 10 ms / (3.2 ms / 64)
    assert "load average (1 min) before the run: 3.5 (more than its 2 cores" in md
    assert "`mnist-edge serve --workers 2`" in md and "failed: HTTP 400: not supported" in md
    assert "| `test_normalize_canvas_rgba` | 0.500 | 5 | 20x |" in md


def test_tree_memory_counts_this_process():
    memory = tree_memory_mb(os.getpid())
    assert memory["processes"] >= 1 and memory["rss_mb"] > 1


def test_bench_without_mnist_is_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DATA"}
    done = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "bench", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "mnist-edge: error: bench checks every answer against MNIST: pass --data PATH or set MNIST_DATA"]


def test_load_phase_reports_a_refused_request_kind_as_a_failed_row(mnist):
    """A request kind the server refuses (an unknown model on /v2) becomes a failed row with the answer it got."""
    server = start_background(create_app(ServeConfig(models=["tflite-int8"])))
    try:
        cells = run_load(server.url, mnist.x_test[0], int(mnist.y_test[0]), model="no-such-model", seconds=1)
    finally:
        server.close()
    by_endpoint = {}
    for cell in cells:
        by_endpoint.setdefault(cell["endpoint"], []).append(cell)
    assert [c["status"] for c in by_endpoint["/v1/predict"]] == ["ok"] * 4
    refused = by_endpoint["/v2/models/no-such-model/infer"]
    assert len(refused) == 4 and all(c["status"] == "failed" and c["reason"].startswith("HTTP 404") for c in refused)
