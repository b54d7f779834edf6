"""A real waitress server on a free loopback port: canvas PNGs, v2 round trips, concurrency, garbage; config and CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from api_fixtures import GARBAGE, canvas_png, direct, drawings

from mnist_edge.benchmarks.background import start_background
from mnist_edge.cli import main as cli_main
from mnist_edge.runtime.config import SOURCES, ServeConfig, config_from, env_name
from mnist_edge.runtime.errors import ConfigError
from mnist_edge.runtime.api.server import add_arguments


@pytest.fixture(scope="module")
def server(app):
    """The shipped-models app behind waitress in a background thread."""
    running = start_background(app, threads=4)
    yield running
    running.close()
    assert not running.thread.is_alive()


@pytest.fixture(scope="module")
def http():
    """One keep-alive session (connection pool sized for the concurrency test)."""
    with requests.Session() as session:
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))
        yield session


def predict_png(http, server, image: bytes, backend: str | None = None) -> dict:
    params = {"backend": backend} if backend else {}
    response = http.post(f"{server.url}/v1/predict", params=params, data=image,
                         headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_canvas_pngs_of_mnist_digits_come_back_with_their_label(app, server, http, confident_digits):
    right = 0
    for label, digit in confident_digits:
        image = canvas_png(digit)
        body = predict_png(http, server, image)
        assert body["digit"] == int(np.argmax(direct(app, body["backend"], image)))
        right += body["digit"] == label
    assert right > len(confident_digits) / 2, f"{right} of {len(confident_digits)} canvas digits right"


def test_v2_infer_round_trip_on_mnist_pixels(app, server, http, known_digits):
    """The first 64 MNIST test digits, chosen by no model, in one batch: the data set's labels are the oracle."""
    name = app.extensions["mnist_edge"].registry.default
    pixels, labels = known_digits[0][:64], known_digits[1][:64]
    request = {"id": "mnist", "inputs": [{"name": "image", "shape": [len(pixels), 28, 28], "datatype": "UINT8",
                                         "data": pixels.ravel().tolist()}]}
    response = http.post(f"{server.url}/v2/models/{name}/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert output["shape"] == [64, 10]
    right = int((np.array(output["data"]).reshape(64, 10).argmax(axis=1) == labels).sum())
    assert right >= 62, f"{right} of 64"  # the model scores 99.6 % on MNIST: 62 allows two misses, a mix-up fails


def test_concurrent_requests_match_sequential_ones_on_every_backend(server, http, loaded_names):
    images = drawings()
    jobs = [(name, i % len(images)) for name in loaded_names for i in range(8 * 20)]  # 8 threads x 20 per backend
    sequential = {(name, i): predict_png(http, server, images[i], name) for name in loaded_names for i in range(len(images))}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda job: (job, predict_png(http, server, images[job[1]], job[0])), jobs))
    assert len(answers) == len(jobs)
    for key, body in answers:
        expected = sequential[key]
        assert body["backend"] == key[0] and body["digit"] == expected["digit"]
        np.testing.assert_allclose(body["probabilities"], expected["probabilities"], atol=1e-6)


def test_garbage_never_yields_a_500_and_the_server_keeps_answering(server, http):
    for method, path, kwargs in GARBAGE:
        response = http.request(method, server.url + path, timeout=30, **kwargs)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    with socket.create_connection((server.server.effective_host, server.server.effective_port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.")  # waitress answers 400 itself
    assert http.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert predict_png(http, server, drawings()[0])["digit"] in range(10)


def test_a_too_large_body_is_a_413_over_real_http(server, http):
    response = http.post(f"{server.url}/v1/predict", data=b"\x00" * (6 * 1024 * 1024),
                         headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    with socket.create_connection((server.server.effective_host, server.server.effective_port), timeout=5) as raw:
        raw.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 900000000\r\n\r\n")
        assert raw.recv(4096).split(b"\r\n")[0].split()[1] == b"413"  # refused before a byte of the body is read


def test_flags_win_over_environment_over_defaults():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {env_name("port"): "9001", env_name("token"): "from-env", env_name("models"): "onnx-int8, tflite-int8",
           env_name("workers"): "3",
           env_name("max_body_bytes"): "0.5", "MNIST_EDGE_PROVIDERS": "CUDAExecutionProvider,CPUExecutionProvider"}
    config = config_from(parser.parse_args(["--port", "9002", "--model", "tflite-fp32", "--model", "onnx-fp32,onnx-int8"]), env)
    assert config.port == 9002 and config.token == "from-env" and config.workers == 3
    assert config.models == ["tflite-fp32", "onnx-fp32", "onnx-int8"]
    assert config.max_body_bytes == 512 * 1024
    assert config.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    defaults = ServeConfig()
    assert config.host == defaults.host == "127.0.0.1" and config.threads == defaults.threads
    assert defaults.workers is None  # one per CPU core, decided at start
    assert (defaults.models_dir / "manifest.json").is_file()
    assert env_name("max_body_bytes") == "MNIST_EDGE_MAX_BODY_MB" and env_name("models_dir") == "MNIST_EDGE_MODELS_DIR"


@pytest.mark.parametrize(("flags", "env"), [
    (["--port", "abc"], {}), (["--port", "70000"], {}), (["--threads", "0"], {}), ([], {"MNIST_EDGE_MAX_BATCH": "-3"}),
    (["--workers", "0"], {}), ([], {"MNIST_EDGE_WORKERS": "two"}),
    (["--max-body-mb", "nan"], {}), (["--log-level", "LOUD"], {}), (["--model", " , "], {}),
])
def test_bad_values_are_config_errors(flags, env):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ConfigError) as info:
        config_from(parser.parse_args(flags), env)
    assert "\n" not in info.value.message


def test_a_bad_flag_is_one_line_and_a_nonzero_exit(capsys, monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_PORT", raising=False)
    assert cli_main(["serve", "--port", "eighty"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port" in err and "whole number" in err


def _rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def test_mnist_edge_serve_starts_reports_cold_start_and_serves(shipped_models, tmp_path):
    env = {**os.environ, "MNIST_EDGE_TOKEN": "tok", "MNIST_EDGE_LOG_LEVEL": "INFO", "MNIST_EDGE_WORKERS": "2"}
    command = [sys.executable, "-m", "mnist_edge.cli", "serve", "--port", "0", "--models-dir", str(shipped_models),
               "--model", "onnx-int8,tflite-int8"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if "serving on" in line or len(lines) > 50:
                break
        match = re.search(r"serving on (http://\S+) \(2 workers.*ready ([\d.]+) s after process start; models from (.+)",
                          "".join(lines))
        assert match, "".join(lines)
        assert match.group(3) == str(shipped_models.resolve())  # which folder serves, said at once
        url, cold_start = match.group(1), float(match.group(2))
        assert 0 < cold_start < 60
        assert sum("loaded (" in line for line in lines) == 2
        assert requests.get(f"{url}/readyz", timeout=10).json()["ready"]
        assert requests.get(f"{url}/v1/models", timeout=10).status_code == 401
        models = requests.get(f"{url}/v1/models", headers={"Authorization": "Bearer tok"}, timeout=10).json()
        assert [m["name"] for m in models["models"]] == ["onnx-int8", "tflite-int8"]
        workers = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
        assert len(workers) == 2
        rss = {"master": _rss_mb(process.pid), **{f"worker {i}": _rss_mb(pid) for i, pid in enumerate(workers)}}
        print(json.dumps({"cold_start_s": cold_start, "rss_mb": {k: round(v, 1) for k, v in rss.items()},
                          "rss_total_mb": round(sum(rss.values()), 1)}))
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stderr.close()


def test_a_port_in_use_is_one_error_line_and_a_nonzero_exit(shipped_models, capsys, monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_PORT", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["serve", "--port", str(port), "--models-dir", str(shipped_models), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_every_flag_has_the_variable_its_name_gives():
    """MNIST_EDGE_ + the flag's name, as the README says: --model reads MNIST_EDGE_MODEL, --max-body-mb MNIST_EDGE_MAX_BODY_MB."""
    for name, (flag, _, _) in SOURCES.items():
        assert env_name(name) == "MNIST_EDGE_" + flag.removeprefix("--").upper().replace("-", "_"), flag
    assert config_from(None, {"MNIST_EDGE_MODEL": "onnx-int8"}).models == ["onnx-int8"]


def test_a_default_model_left_out_of_model_is_explained(shipped_models):
    from mnist_edge.runtime.api.app import create_app

    with pytest.raises(ConfigError) as caught:
        create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], default_model="tflite-int8"))
    assert "tflite-int8 is not loaded" in caught.value.message and "--model onnx-int8,tflite-int8" in caught.value.message


def test_serving_the_network_without_a_token_is_warned_about():
    from mnist_edge.runtime.api.server import exposure_warning

    assert exposure_warning(ServeConfig()) is None  # loopback
    assert exposure_warning(ServeConfig(host="0.0.0.0", token="s3cret")) is None
    assert "WITHOUT A TOKEN" in exposure_warning(ServeConfig(host="0.0.0.0"))
