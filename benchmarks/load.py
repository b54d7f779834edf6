"""The HTTP load phase: wrk at 1 and 8 connections on /v1/predict (PNG bodies), /v1/read (a 6-digit number) and /v2
infer (JSON and binary)."""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_edge.runtime.encode import encoded
from mnist_edge.runtime.errors import BenchmarkError
from mnist_edge.runtime.preprocess import scale_pixels

CONNECTIONS = (1, 8)
MARKER = "WRK_JSON "
# wrk calls done() once at the end with every request's latency; the body is read from a file so any bytes go.
LUA = """
local f = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
%(headers)s
done = function(summary, latency, requests)
  local e, n = summary.errors, summary.requests
  local mean = 0
  if n > 0 then mean = latency.mean end
  io.write(string.format('%(marker)s{"requests": %%d, "duration_us": %%d, "errors": {"connect": %%d, "read": %%d, '
    .. '"write": %%d, "status": %%d, "timeout": %%d}, "latency_us": {"mean": %%.1f, "p50": %%d, "p90": %%d, '
    .. '"p99": %%d, "max": %%d}}\\n', n, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Case:
    """One kind of request: where it goes, its body and headers, and how to tell its answer is right."""

    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    answer: Callable[[bytes, dict[str, str]], int | str] = field(repr=False)  # the digit (or number) it names
    expected: str | None = None  # the number a /v1/read answer must name; None: the run's digit


def _on_canvas(digit: np.ndarray) -> np.ndarray:
    """A 28 x 28 MNIST digit scaled 7x onto a 280 x 280 ink mask, off centre as people draw."""
    big = Image.fromarray(digit).resize((196, 196), Image.Resampling.BILINEAR)
    page = Image.new("L", (280, 280), 0)
    page.paste(big, (50, 30))
    return np.asarray(page)


def gray_png(digit: np.ndarray) -> bytes:
    """One-channel 280 x 280 PNG, dark ink on white, as the UI sends."""
    return encoded(255 - _on_canvas(digit))


def rgba_png(digit: np.ndarray) -> bytes:
    """RGBA 280 x 280 canvas PNG: black ink whose alpha carries the stroke, on a transparent background."""
    ink = _on_canvas(digit)
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = ink
    return encoded(rgba)


NUMBER_GAP = 20  # px between the digits of the benchmark's number, as written apart on the wide canvas


def number_png(digits: list[np.ndarray]) -> bytes:
    """RGBA canvas PNG of MNIST digits side by side (each as rgba_png draws one), 280 px tall: six of them fill most of
    the Number mode's 840 px canvas. (The canvas itself sends one channel; RGBA is what other canvases export.)"""
    parts = []
    for digit in digits:
        ink = _on_canvas(digit)
        cols = np.flatnonzero(ink.max(axis=0))
        parts += [ink[:, cols[0] : cols[-1] + 1], np.zeros((280, NUMBER_GAP), np.uint8)]
    ink = np.hstack([np.zeros((280, NUMBER_GAP), np.uint8), *parts])
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    return encoded(rgba)


def _v1_number(body: bytes, _headers: dict[str, str]) -> str:
    return json.loads(body)["number"]


def _v1_digit(body: bytes, _headers: dict[str, str]) -> int:
    return int(json.loads(body)["digit"])


def _v2_digit(body: bytes, headers: dict[str, str]) -> int:
    """argmax of the probabilities output, whether it came back as JSON data or as binary after a JSON header."""
    header_length = headers.get("inference-header-content-length")
    if header_length is None:
        return int(np.argmax(json.loads(body)["outputs"][0]["data"]))
    header = json.loads(body[:int(header_length)])
    output = header["outputs"][0]
    if "data" in output:
        return int(np.argmax(output["data"]))
    start = int(header_length)  # the probabilities come first; the digit score's bytes follow them
    return int(np.argmax(np.frombuffer(body[start : start + output["parameters"]["binary_data_size"]], dtype="<f4")))


def cases(digit: np.ndarray, *, model: str, number: tuple[list[np.ndarray], str] | None = None) -> list[Case]:
    """The four request kinds carrying the same MNIST test digit, and /v1/read of `number` (digits, text) if given."""
    tensor = scale_pixels(digit)  # float32 1 x 28 x 28 x 1
    infer = f"/v2/models/{model}/infer"
    spec = {"name": "image", "shape": list(tensor.shape), "datatype": "FP32"}
    as_json = json.dumps({"inputs": [{**spec, "data": tensor.ravel().tolist()}]}).encode()
    raw = tensor.astype("<f4").tobytes()
    header = json.dumps({"inputs": [{**spec, "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return [
        Case("PNG, 1 channel", "/v1/predict", gray_png(digit), {"Content-Type": "image/png"}, _v1_digit),
        Case("PNG, RGBA canvas", "/v1/predict", rgba_png(digit), {"Content-Type": "image/png"}, _v1_digit),
        Case("JSON FP32 [1,28,28,1]", infer, as_json, {"Content-Type": "application/json"}, _v2_digit),
        Case("binary FP32 [1,28,28,1]", infer, header + raw,
             {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
             _v2_digit),
    ] + ([Case(f"{len(number[1])}-digit number, RGBA canvas", "/v1/read", number_png(number[0]),
               {"Content-Type": "image/png"}, _v1_number, number[1])] if number else [])


def check(url: str, case: Case, label: int) -> str | None:
    """One request before the load: None when it answers 200 with the right digit, else why not."""
    request = urllib.request.Request(url + case.path, data=case.body, headers=case.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body, headers = response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer: {exc}"
    try:
        digit = case.answer(body, headers)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"unreadable answer ({exc!r}): {body[:200]!r}"
    expected = label if case.expected is None else case.expected
    return None if digit == expected else f"answered {digit}, the label is {expected}"


def wrk(url: str, case: Case, *, connections: int, seconds: int, workdir: Path) -> dict:
    """Run wrk for `seconds` (it stops by itself) and return its done() summary."""
    body = workdir / "body.bin"
    body.write_bytes(case.body)
    headers = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in case.headers.items())
    script = workdir / "post.lua"
    script.write_text(LUA % {"body": json.dumps(str(body)), "headers": headers, "marker": MARKER})
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
               url + case.path]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"wrk did not stop {seconds + 30} s after a {seconds} s run") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    return json.loads(lines[-1].removeprefix(MARKER))


def _cell(case: Case, connections: int, stats: dict) -> dict:
    requests, seconds = stats["requests"], stats["duration_us"] / 1e6
    errors = sum(stats["errors"].values())
    latency = {k: round(v / 1000, 3) for k, v in stats["latency_us"].items()}
    return {"endpoint": case.path, "request": case.name, "connections": connections,
            "status": "ok" if errors == 0 and requests > 0 else "failed",
            "reason": None if errors == 0 else f"{errors} errors in {requests} requests: {stats['errors']}",
            "requests": requests, "requests_per_s": round(requests / seconds, 1) if seconds else 0.0,
            "latency_ms": latency}


def wrk_seconds(seconds: float) -> int:
    """The run length wrk gets: it takes whole seconds, at least one."""
    return max(1, math.ceil(seconds))


def _failed(case: Case, connections: int, reason: str) -> dict:
    return {"endpoint": case.path, "request": case.name, "connections": connections, "status": "failed",
            "reason": reason}


def run_load(url: str, digit: np.ndarray, label: int, *, model: str, seconds: float,
             number: tuple[list[np.ndarray], str] | None = None) -> list[dict]:
    """Every request kind at every connection count; a kind the server answers wrongly is a failed row, not a crash."""
    cells = []
    with tempfile.TemporaryDirectory(prefix="mnist-edge-wrk-") as tmp:
        for case in cases(digit, model=model, number=number):
            problem = check(url, case, label)
            for connections in CONNECTIONS:
                if problem:
                    cells.append(_failed(case, connections, problem))
                    continue
                try:
                    stats = wrk(url, case, connections=connections, seconds=wrk_seconds(seconds), workdir=Path(tmp))
                except BenchmarkError as exc:  # one cell that wrk could not run must not lose the others
                    cells.append(_failed(case, connections, exc.message))
                    continue
                cells.append(_cell(case, connections, stats))
    return cells
