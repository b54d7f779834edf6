"""`mnist-edge bench`: the quick run end to end (every suite once, answers checked; 1 s wrk cells), the report, and
the peer comparison (`--peer mlserver`: found or refused, its settings, alternating rounds, ratios, its report rows)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from mnist_edge.benchmarks.background import start_background
from mnist_edge.benchmarks.compare import JSON_CASE, PNG_CASE, Target, measure, onnx_fp32, ratios
from mnist_edge.benchmarks.load import cases, run_load
from mnist_edge.benchmarks.peer import SETTINGS, VENV_VAR, MLServer, find_mlserver, write_model_repository
from mnist_edge.benchmarks.report import write_report
from mnist_edge.benchmarks.serve_process import tree_memory_mb
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.errors import BenchmarkError
from mnist_edge.runtime.manifest import read_manifest

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
    assert len(cells) == 10 and {c for _, c in cells} == {1, 8}  # four kinds of one digit, and a 6-digit /v1/read
    for (request, _), cell in cells.items():
        if request.startswith("binary"):  # the binary extension may be missing from a server: a failed row, no crash
            assert cell["status"] == "ok" or cell["reason"], cell
            continue
        assert cell["status"] == "ok", cell
        assert cell["requests"] > 0 and cell["latency_ms"]["p99"] >= cell["latency_ms"]["p50"] > 0
    read = http["read_vs_predict"]  # the number against one digit, in alternating rounds
    assert read["read"]["request"] == "6-digit number, RGBA canvas" and read["predict"]["request"] == "PNG, RGBA canvas"
    assert all(len(read[k]["rounds"]) == read["rounds"] == 3 for k in ("read", "predict"))
    assert read["ratio"] == round(read["read"]["p50_ms"] / read["predict"]["p50_ms"], 3) > 1


def test_quick_bench_report(quick_run):
    _, out = quick_run
    md = (out / "results.md").read_text()
    assert "## HTTP load (wrk)" in md and "`/v2/models/tflite-int8/infer`" in md and "| ok |" in md
    assert re.search(r"`/v1/read` of a 6-digit number, RGBA canvas at 1 connection: p50 [\d.]+ ms, [\d.]+x one "
                     r"digit's `/v1/predict`", md)
    for chart in ("size_accuracy.png", "http.png"):
        with Image.open(out / chart) as image:
            assert image.format == "PNG" and image.width > 300
        assert f"]({chart})" in md


def _bench(name: str, group: str, median: float, **extra) -> dict:
    stats = {"min": median, "max": median, "mean": median, "stddev": 0.0, "median": median, "iqr": 0.0,
             "rounds": 5, "ops": 1 / median}
    return {"name": name, "group": group, "params": {}, "extra_info": extra, "stats": stats}


def _timed_results() -> dict:
    """A timed run's results.json with made-up figures; no peer."""
    return {
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


def test_report_tables_and_charts_from_timed_results(tmp_path):
    """A timed run's JSON: the speed-up column and the latency charts come out of it (figures made up, exact)."""
    results = _timed_results()
    written = {p.name for p in write_report(results, tmp_path)}
    assert written == {"results.md", "latency.png", "speedup.png", "size_accuracy.png"}  # no HTTP row to chart
    md = (tmp_path / "results.md").read_text()
    assert "| a | tflite | int8 | 1 | 0.100 | 100.0 | 100x |" in md  # 10 ms / 0.1 ms per image
    assert "| a | tflite | int8 | 64 | 3.200 | 50.0 | 200x |" in md  # 10 ms / (3.2 ms / 64)
    assert "load average (1 min) before the run: 3.5 (more than its 2 cores" in md
    assert "`mnist-edge serve --workers 2`" in md and "failed: HTTP 400: not supported" in md
    assert "| `test_normalize_canvas_rgba` | 0.500 | 5 | 20x |" in md


def test_report_gives_the_read_ratio_of_the_median_rounds(tmp_path):
    results = _timed_results()
    row = {"status": "ok", "reason": None, "connections": 1}
    results["http"]["read_vs_predict"] = {
        "rounds": 3, "seconds_per_cell": 10, "ratio": 3.2,
        "read": {**row, "request": "6-digit number, RGBA canvas", "p50_ms": 8.0,
                 "rounds": [{"p50_ms": 8.0}, {"p50_ms": 12.0}, {"p50_ms": 7.5}]},
        "predict": {**row, "request": "PNG, RGBA canvas", "p50_ms": 2.5,
                    "rounds": [{"p50_ms": 2.5}, {"p50_ms": 2.4}, {"p50_ms": 2.6}]}}
    write_report(results, tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert ("`/v1/read` of a 6-digit number, RGBA canvas at 1 connection: p50 8.00 ms, 3.2x one digit's `/v1/predict` "
            "(2.50 ms; target at most 3x): medians of 3 rounds of 10 s each, the order reversed every other round "
            "(p50 ms per round, read / predict: 8.00 / 2.50; 12.00 / 2.40; 7.50 / 2.60).") in md


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


def _fake_venv(root: Path, interpreter: Path) -> Path:
    """A venv-shaped folder whose bin/mlserver is a console script that `interpreter` runs."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "mlserver").write_text(f"#!{interpreter}\n")
    return root


def test_bench_peer_not_installed_is_one_line_error_before_the_suites(mnist, tmp_path):
    missing = tmp_path / "nowhere"
    done = subprocess.run([sys.executable, "-m", "mnist_edge.cli", "bench", "--quick", "--out", str(tmp_path / "out"),
                           "--data", mnist.source, "--peer", "mlserver", "--peer-venv", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"mnist-edge: error: --peer mlserver: no {missing}/bin/mlserver; install it with python3 -m venv {missing} "
        f"&& {missing}/bin/pip install mlserver==1.7.1 'uvloop<0.22' onnxruntime"]
    assert not (tmp_path / "out" / "logs" / "pytest.log").exists()


def test_find_mlserver_without_one_on_path(monkeypatch, tmp_path):
    monkeypatch.delenv(VENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchmarkError) as caught:
        find_mlserver()
    assert caught.value.message.startswith("--peer mlserver: MLServer not found; install it in its own venv")
    assert caught.value.message.endswith(f"pass --peer-venv DIR or set {VENV_VAR}")


def test_find_mlserver_names_what_its_python_lacks(tmp_path):
    venv = _fake_venv(tmp_path, Path(sys.executable))  # this project's venv has no mlserver: it conflicts
    with pytest.raises(BenchmarkError, match=r"cannot load mlserver, onnxruntime and uvloop "
                                             r"\(ModuleNotFoundError: No module named 'mlserver'\)"):
        find_mlserver(venv)


def test_find_mlserver_refuses_the_uvloop_that_breaks_its_workers(monkeypatch, tmp_path):
    python = tmp_path / "python"  # stands in for MLServer's interpreter: prints what the version probe prints
    python.write_text("#!/bin/sh\necho 1.7.1 1.32.0 0.22.1\n")
    python.chmod(0o755)
    venv = _fake_venv(tmp_path / "venv", python)
    with pytest.raises(BenchmarkError, match=r"MLServer 1\.7\.1's inference workers fail with uvloop 0\.22\.1 "
                                             r"\(SeldonIO/MLServer#2286\); in its venv: pip install 'uvloop<0\.22'$"):
        find_mlserver(venv)
    python.write_text("#!/bin/sh\necho 1.7.1 1.32.0 0.21.0\n")
    monkeypatch.setenv(VENV_VAR, str(venv))
    assert find_mlserver() == MLServer(venv / "bin" / "mlserver", "1.7.1", "1.32.0")


def test_peer_settings_differ_from_mlservers_defaults_only_in_ports_and_workers(shipped_models, tmp_path):
    name, model_file = onnx_fp32(shipped_models)
    assert name == "onnx-fp32" and model_file.is_file()
    for workers in SETTINGS.values():
        folder = tmp_path / str(workers)
        write_model_repository(folder, name=name, model_file=model_file, parallel_workers=workers, ports=(1, 2, 3))
        settings = json.loads((folder / "settings.json").read_text())
        assert settings == {"host": "127.0.0.1", "http_port": 1, "grpc_port": 2, "metrics_port": 3,
                            **({} if workers is None else {"parallel_workers": workers})}
        assert json.loads((folder / "model-settings.json").read_text()) == {
            "name": name, "implementation": "mlserver_onnx.OnnxModel", "parameters": {"uri": str(model_file.resolve())}}
        runtime = (folder / "mlserver_onnx.py").read_text()
        compile(runtime, "mlserver_onnx.py", "exec")
        assert "intra_op_num_threads = 1" in runtime and '"session.intra_op.allow_spinning", "0"' in runtime
    assert SETTINGS == {"in-process (parallel_workers 0)": 0, "default (one inference worker)": None}


def test_peer_rounds_alternate_and_a_refused_target_is_a_failed_row(mnist):
    digit, label = mnist.x_test[0], int(mnist.y_test[0])
    server = start_background(create_app(ServeConfig(models=["tflite-int8"])))
    json_case = next(c for c in cases(digit, model="tflite-int8") if c.name == JSON_CASE)
    refused = next(c for c in cases(digit, model="onnx-fp32") if c.name == JSON_CASE)  # not loaded: 404
    try:
        rows = measure([Target("mnist-edge", "served", "tflite-int8", server.url, json_case, (1, 8)),
                        Target("MLServer", "refused", "onnx-fp32", server.url, refused, (1, 8))],
                       label, seconds=1, rounds=2)
    finally:
        server.close()
    served = [r for r in rows if r["setting"] == "served"]
    assert [(r["connections"], r["status"], len(r["rounds"])) for r in served] == [(1, "ok", 2), (8, "ok", 2)]
    for row in served:
        assert row["p50_ms"] == round(statistics.median(r["p50_ms"] for r in row["rounds"]), 3) > 0
        assert row["requests_per_s"] == round(statistics.median(r["requests_per_s"] for r in row["rounds"]), 3) > 0
    for row in (r for r in rows if r["setting"] == "refused"):
        assert row["status"] == "failed" and row["reason"].startswith("HTTP 404") and row["rounds"] == []
        assert row["p50_ms"] is row["requests_per_s"] is None
    assert {r["value"] for r in ratios(rows)} == {None}  # no peer figure: no ratio, and no crash


def _row(server: str, setting: str, request: str, connections: int, p50: float, rps: float) -> dict:
    rounds = [{"requests_per_s": rps, "p50_ms": p50, "p99_ms": p50 * 3}]
    return {"server": server, "setting": setting, "model": "onnx-fp32" if server == "MLServer" else "m",
            "endpoint": "/v1/predict" if request == PNG_CASE else "/v2/models/m/infer", "request": request,
            "connections": connections, "status": "ok", "reason": None, "rounds": rounds, "requests_per_s": rps,
            "p50_ms": p50, "p99_ms": p50 * 3}


PEER_ROWS = [_row("mnist-edge", "m (default model)", JSON_CASE, 1, 1.0, 900.0),
             _row("mnist-edge", "m (default model)", JSON_CASE, 8, 4.0, 2000.0),
             _row("mnist-edge", "m (default model)", PNG_CASE, 1, 2.0, 450.0),
             _row("MLServer", "in-process (parallel_workers 0)", JSON_CASE, 1, 1.2, 800.0),
             _row("MLServer", "in-process (parallel_workers 0)", JSON_CASE, 8, 9.0, 900.0),
             _row("MLServer", "default (one inference worker)", JSON_CASE, 1, 1.5, 600.0),
             _row("MLServer", "default (one inference worker)", JSON_CASE, 8, 8.0, 1000.0)]


def test_peer_ratios_take_mlservers_best_setting_for_each_figure():
    found = {r["figure"]: r for r in ratios(PEER_ROWS)}
    assert len(found) == 3 and {r["model"] for r in found.values()} == {"m"}
    c8, c1, png = found["/v2 JSON, c=8 req/s"], found["/v2 JSON, c=1 p50"], found["/v1 PNG (1 channel), c=1 p50"]
    assert (c8["value"], c8["peer_setting"], c8["met"]) == (2.0, "default (one inference worker)", True)  # 2000 / 1000
    assert (c1["value"], c1["peer_setting"], c1["met"]) == (1.2, "in-process (parallel_workers 0)", False)  # 1.2 / 1.0
    assert (png["value"], png["met"]) == (1.667, False)  # 2.0 / 1.2, more than 1.5x


def test_report_shows_the_peer_rows_ratios_and_chart(tmp_path):
    results = _timed_results()
    results["peer"] = {"server": "MLServer", "version": "1.7.1", "onnxruntime": "1.32.0",
                       "model_file": "model_fp32.onnx", "runtime": "benchmarks/mlserver_onnx.py", "rounds": 1,
                       "seconds_per_cell": 10, "rows": PEER_ROWS, "ratios": ratios(PEER_ROWS),
                       "settings": {s: {"cold_start_s": 2.5, "memory_ready": {"processes": 1 if w == 0 else 3,
                                                                             "rss_mb": 170.0, "pss_mb": 150.0}}
                                    for s, w in SETTINGS.items()}}
    assert "peer.png" in {p.name for p in write_report(results, tmp_path)}
    with Image.open(tmp_path / "peer.png") as image:
        assert image.format == "PNG" and image.width > 300
    md = (tmp_path / "results.md").read_text()
    assert "## Against a peer: Seldon MLServer 1.7.1" in md and "one intra-op thread" in md and "](peer.png)" in md
    assert ("| mnist-edge | m (default model) | JSON FP32 [1,28,28,1] | 1.00 | 3.00 | 2,000 | 4.00 | 1.00 / 2000 | ok |"
            in md)
    assert "| MLServer | default (one inference worker) | JSON FP32 [1,28,28,1] | 1.50 | 4.50 | 1,000 | 8.00 |" in md
    assert "| mnist-edge | m (default model) | PNG, 1 channel | 2.00 | 6.00 | - | - | 2.00 / - | ok |" in md
    assert ("| /v2 JSON, c=8 req/s | m | mnist-edge ÷ MLServer best | default (one inference worker) | 2.00x | >= 1.5 "
            "| yes |") in md
    assert "in-process (parallel_workers 0) 2.50 s, RSS 170.0 MB in 1 process;" in md

    results["peer"] = {"server": "MLServer", "version": "1.7.1", "error": "the server was not ready within 180 s"}
    assert "peer.png" not in {p.name for p in write_report(results, tmp_path)}
    assert "Not measured: the server was not ready within 180 s" in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "peer.png").exists()


def test_per_image_times_cover_every_served_file_of_every_set(shipped_models, tmp_path, capsys):
    import shutil

    from mnist_edge.benchmarks.files import main, per_image_us

    copy = shutil.copytree(shipped_models, tmp_path / "copy", ignore=shutil.ignore_patterns(".previous"))
    figures = per_image_us([shipped_models, copy], rounds=2, calls=3)
    served = {name for name, e in read_manifest(shipped_models)["artifacts"].items() if e["format"] != "keras"}
    assert set(figures) == served
    assert all(set(by_folder) == {str(shipped_models), str(copy)} and min(by_folder.values()) > 0
               for by_folder in figures.values())
    assert main([str(shipped_models), str(copy), "--rounds", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 + len(served) and all(row.count("x |") == 1 for row in table[2:])  # one ratio per row
