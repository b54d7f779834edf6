"""`mnist-edge serve --workers 2` as a real process tree: answers, metrics over both workers, replacement, shutdown."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from api_fixtures import canvas_png, damaged_copy, direct

MODELS = "onnx-int8,tflite-int8"  # two runtimes, so every worker builds an ONNX session and a LiteRT interpreter
START_SECONDS = 120  # a guard against a hung start on a loaded machine, not a timing assertion


class Served:
    """A `mnist-edge serve` process tree and its log."""

    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log
        self.url = ""

    def text(self) -> str:
        """The log so far."""
        return self.log.read_text()

    def wait_for(self, pattern: str) -> re.Match:
        """Block until the log matches `pattern` (the process must stay alive meanwhile)."""
        deadline = time.monotonic() + START_SECONDS
        while not (match := re.search(pattern, self.text())):
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {pattern!r} in {START_SECONDS} s:\n{self.text()}"
            time.sleep(0.05)
        return match

    def workers(self) -> set[int]:
        """Process ids of the master's live children (the workers)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:  # gone while we looked
                continue
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
        return found

    def leftovers(self) -> set[int]:
        """Processes still running in the server's working folder (a worker that outlived its master would be)."""
        found = set()
        for cwd in Path("/proc").glob("[0-9]*/cwd"):
            try:
                if cwd.readlink() == self.log.parent:
                    found.add(int(cwd.parent.name))
            except OSError:  # gone, or not ours to read
                continue
        return found

    def stop(self) -> int:
        """SIGTERM and the exit status."""
        self.process.terminate()
        return self.process.wait(timeout=30)


def serve(tmp_path: Path, models_dir: Path, *args: str, env: dict | None = None) -> Served:
    """Start `mnist-edge serve --workers 2 --port 0` with its log in tmp_path."""
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "mnist_edge.cli", "serve", "--workers", "2", "--port", "0",
               "--models-dir", str(models_dir), "--model", MODELS, *args]
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("MNIST_EDGE_", "PROMETHEUS_"))}
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env={**environ, **(env or {})})
    return Served(process, log)


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    """A PROMETHEUS_MULTIPROC_DIR given to the server, with a stale file from an earlier run in it."""
    path = tmp_path_factory.mktemp("prom")
    (path / "counter_999999.db").write_bytes(b"stale")
    return path


def two_workers(folder: Path, shipped_models: Path, env: dict | None = None):
    """Two workers on the shipped models, ready, with their URL; stopped afterwards (a generator for fixtures)."""
    running = serve(folder, shipped_models, env=env)
    try:
        running.url = running.wait_for(r"serving on (http://\S+) \(2 workers").group(1)
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


@pytest.fixture(scope="module")
def served(shipped_models, metrics_dir, tmp_path_factory):
    """Two workers on the shipped models, metrics files in `metrics_dir`."""
    yield from two_workers(tmp_path_factory.mktemp("workers"), shipped_models, {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})


def predict(url: str, image: bytes) -> dict:
    """POST a canvas PNG on a fresh connection (so that requests spread over the workers)."""
    response = requests.post(f"{url}/v1/predict", data=image, timeout=30,
                             headers={"Content-Type": "image/png", "Connection": "close"})
    assert response.status_code == 200, response.text
    return response.json()


def scrape(url: str) -> str:
    """The /metrics text."""
    response = requests.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    return response.text


def sample(text: str, name: str, labels: str = "") -> float:
    """One sample's value (0 when absent)."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


PREDICT_200 = '{endpoint="/v1/predict",method="POST",status="200"}'


def test_workers_answer_v1_and_v2_like_the_models_do(app, served, confident_digits):
    for _, digit in confident_digits:
        image = canvas_png(digit)
        body = predict(served.url, image)
        assert body["digit"] == int(np.argmax(direct(app, body["backend"], image)))
    pixels = np.stack([digit for _, digit in confident_digits])
    request = {"inputs": [{"name": "image", "shape": [len(pixels), 28, 28], "datatype": "UINT8",
                           "data": pixels.ravel().tolist()}]}
    response = requests.post(f"{served.url}/v2/models/onnx-int8/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    digits = np.array(output["data"]).reshape(output["shape"]).argmax(axis=1)
    assert list(digits) == [label for label, _ in confident_digits]
    assert sum("loaded (" in line for line in served.text().splitlines()) == 2  # logged once, by the master's check


def predicts_of(pid: int, metrics_dir: Path, scratch: Path) -> float:
    """The 200s on /v1/predict that one worker answered, read from a copy of its own counter file alone."""
    source = metrics_dir / f"counter_{pid}.db"
    if not source.exists():  # a worker writes it from its first answer on
        return 0.0
    alone = scratch / str(pid)
    alone.mkdir(exist_ok=True)
    shutil.copy(source, alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    labels = {"endpoint": "/v1/predict", "method": "POST", "status": "200"}
    return registry.get_sample_value("mnist_edge_requests_total", labels) or 0.0


def test_metrics_add_up_the_requests_of_both_workers(served, metrics_dir, confident_digits, tmp_path):
    assert not (metrics_dir / "counter_999999.db").exists()  # emptied at start
    workers = served.workers()
    assert len(workers) == 2
    image = canvas_png(confident_digits[0][1])
    before = sample(scrape(served.url), "mnist_edge_requests_total", PREDICT_200)
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while sent < 400 and not all(predicts_of(pid, metrics_dir, tmp_path) for pid in workers):
            bodies = list(pool.map(lambda _: predict(served.url, image), range(16)))
            assert all(body["digit"] == confident_digits[0][0] for body in bodies)
            sent += len(bodies)
    per_worker = [predicts_of(pid, metrics_dir, tmp_path) for pid in workers]
    assert all(per_worker), f"one worker answered all {sent}: {per_worker}"
    text = scrape(served.url)
    assert sample(text, "mnist_edge_requests_total", PREDICT_200) == before + sent == sum(per_worker)
    assert sample(text, "mnist_edge_inference_duration_seconds_count", '{backend="tflite-int8"}') >= sent
    assert sample(text, "mnist_edge_requests_in_flight") == 1  # the scrape itself, wherever it landed
    assert sample(text, "mnist_edge_model_loaded", '{model="onnx-int8"}') == 1


def test_a_killed_worker_is_replaced_and_its_counts_stay(served, metrics_dir, confident_digits):
    image = canvas_png(confident_digits[0][1])
    predict(served.url, image)
    before = sample(scrape(served.url), "mnist_edge_requests_total", PREDICT_200)
    victim = min(served.workers())
    os.kill(victim, signal.SIGKILL)
    served.wait_for(r"worker \d+ ready \(replacing one that died\)")
    workers = served.workers()
    assert victim not in workers and len(workers) == 2
    assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists()  # marked dead: its in-flight gauge is gone
    assert predict(served.url, image)["digit"] == confident_digits[0][0]
    assert sample(scrape(served.url), "mnist_edge_requests_total", PREDICT_200) == before + 1


def test_sigterm_finishes_the_request_in_flight_and_exits_zero(shipped_models, tmp_path, confident_digits):
    running = serve(tmp_path, shipped_models)
    url = running.wait_for(r"serving on (http://\S+) ").group(1)
    metrics = Path(running.wait_for(r"metrics of every worker in (\S+)").group(1))
    assert metrics.is_dir()
    body = canvas_png(confident_digits[0][1])
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        # A first answer on the connection: a worker holds it (a half-sent request reaches no thread until it is whole).
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):
            first += raw.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        raw.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body[:100])
        os.kill(running.process.pid, signal.SIGTERM)
        running.wait_for(r"Handling signal: term")
        raw.sendall(body[100:])
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"digit":%d' % confident_digits[0][0] in answer.replace(b" ", b"")
    assert running.process.wait(timeout=10) == 0
    assert "stopped: workers drained" in running.text()
    assert not metrics.exists()  # the private metrics folder goes with the server
    assert not running.leftovers()


def test_a_port_in_use_is_one_line_and_nothing_starts(shipped_models, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "mnist_edge.cli", "serve", "--workers", "2", "--port", str(port),
                   "--models-dir", str(shipped_models)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Booting worker" not in done.stderr + done.stdout


def test_models_that_all_fail_stop_the_master_before_any_worker(shipped_models, tmp_path):
    broken = damaged_copy(shipped_models, tmp_path / "models", missing="onnx-int8", corrupt="tflite-int8",
                          tampered="tflite-fp32")
    running = serve(tmp_path, broken)
    assert running.process.wait(timeout=START_SECONDS) == 1
    log = running.text()
    assert "no model loaded" in log and log.count("FAILED") == 2
    assert "Booting worker" not in log


def test_a_bad_default_model_is_one_error_line_from_the_master(shipped_models, tmp_path):
    running = serve(tmp_path, shipped_models, "--default-model", "nope")
    assert running.process.wait(timeout=START_SECONDS) == 1
    errors = [line for line in running.text().splitlines() if line.startswith("mnist-edge: error:")]
    assert len(errors) == 1 and "unknown default model 'nope'" in errors[0] and "onnx-int8" in errors[0]
    assert "Booting worker" not in running.text()


def raw_answer(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is on a socket; the status, headers and body of the answer (read until gunicorn closes)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(request)
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


# Requests gunicorn refuses before Flask sees them: (request, status, API error code).
UNPARSABLE = {
    "nul byte in a header": (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n", 400, "bad_request"),
    "invalid request line": (b"GARBAGE\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "content-length not a number": (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                    b"Content-Length: lots\r\n\r\nabc", 400, "bad_request"),
    "header line without a colon": (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nno header here\r\n\r\n", 400, "bad_request"),
    "request line over the limit": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
}


@pytest.mark.parametrize("name", UNPARSABLE)
def test_what_gunicorn_refuses_gets_the_api_error_shape(served, name):
    request, status, code = UNPARSABLE[name]
    answer_status, headers, body = raw_answer(served.url, request)
    assert answer_status == status, body
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error
    assert requests.get(f"{served.url}/readyz", timeout=30).status_code == 200  # and the server goes on


def test_no_server_version_is_sent(served):
    status, headers, _ = raw_answer(served.url, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert not re.search(r"\d", headers.get("server", "")), headers  # gunicorn 27 sends a bare "gunicorn"


@pytest.mark.parametrize("version", [(25, 1, 0), (26, 2, 0), (28, 0, 0)])
def test_a_gunicorn_the_worker_is_not_tested_with_is_one_clear_error(monkeypatch, version):
    import gunicorn

    from mnist_edge.runtime.errors import ConfigError
    from mnist_edge.runtime.api.workers import check_gunicorn

    monkeypatch.setattr(gunicorn, "version_info", version)
    monkeypatch.setattr(gunicorn, "__version__", ".".join(map(str, version)))
    with pytest.raises(ConfigError, match=r"gunicorn [\d.]+ is installed.*pip install 'gunicorn>=27.0,<28'"):
        check_gunicorn()


def test_the_installed_gunicorn_is_one_the_worker_is_tested_with():
    from mnist_edge.runtime.api.workers import check_gunicorn

    check_gunicorn()
