"""Alternating rounds of wrk: `bench --peer`, mnist-edge's /v2 JSON and /v1 PNG against MLServer on the same ONNX file;
and every bench, a number read by /v1/read against one digit's /v1/predict."""

from __future__ import annotations

import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge.benchmarks.load import Case, cases, check, wrk, wrk_seconds
from mnist_edge.benchmarks.peer import SETTINGS, MLServer, running_mlserver
from mnist_edge.benchmarks.serve_process import tree_memory_mb
from mnist_edge.runtime.errors import BenchmarkError
from mnist_edge.runtime.manifest import read_manifest

ROUNDS = 3  # the machine may be busy: every target gets a cell in each round, and the median of the rounds counts
JSON_CASE, PNG_CASE, CANVAS_CASE = "JSON FP32 [1,28,28,1]", "PNG, 1 channel", "PNG, RGBA canvas"
MNIST_EDGE, PEER = "mnist-edge", "MLServer"
# The targets for mnist-edge against MLServer's best setting: (figure, how the ratio is made, bound).
TARGETS = {"c8": ("/v2 JSON, c=8 req/s", "mnist-edge ÷ MLServer best", ">=", 1.5),
           "c1": ("/v2 JSON, c=1 p50", "MLServer best ÷ mnist-edge", ">=", 1.3),
           "png": ("/v1 PNG (1 channel), c=1 p50", "mnist-edge ÷ MLServer /v2 best", "<=", 1.5)}


@dataclass
class Target:
    """One server and setting, the request it gets, and at which connection counts."""

    server: str
    setting: str
    model: str
    url: str
    case: Case
    connections: tuple[int, ...]


def onnx_fp32(models_dir: Path) -> tuple[str, Path]:
    """The manifest's fp32 ONNX artifact: the file the peer serves, and its name."""
    for name, entry in sorted(read_manifest(models_dir)["artifacts"].items()):
        if entry.get("format") == "onnx" and entry.get("precision") == "fp32":
            return name, Path(models_dir) / entry["file"]
    raise BenchmarkError(f"--peer: {models_dir}/manifest.json lists no fp32 ONNX artifact for the peer to serve")


def _case(digit: np.ndarray, model: str, name: str) -> Case:
    return next(c for c in cases(digit, model=model) if c.name == name)


def _row(target: Target, connections: int) -> dict:
    return {"server": target.server, "setting": target.setting, "model": target.model,
            "endpoint": target.case.path, "request": target.case.name, "connections": connections,
            "status": "ok", "reason": None, "rounds": []}


def measure(targets: list[Target], label: int, *, seconds: float, rounds: int = ROUNDS) -> list[dict]:
    """Check each target's answer, warm it, then `rounds` rounds of every cell (order reversed every other round)."""
    rows = {(id(t), c): _row(t, c) for t in targets for c in t.connections}
    live = []
    with tempfile.TemporaryDirectory(prefix="mnist-edge-wrk-") as tmp:
        for target in targets:
            problem = check(target.url, target.case, label)
            if problem is None:  # a first burst loads lazy paths (worker pools, caches) outside the measured rounds
                try:
                    wrk(target.url, target.case, connections=max(target.connections), seconds=1, workdir=Path(tmp))
                except BenchmarkError as exc:
                    problem = f"warm-up: {exc.message}"
            if problem:
                for connections in target.connections:
                    rows[id(target), connections].update(status="failed", reason=problem)
            else:
                live.append(target)
        for index in range(rounds):
            for target in live if index % 2 == 0 else live[::-1]:
                for connections in target.connections:
                    row = rows[id(target), connections]
                    try:
                        stats = wrk(target.url, target.case, connections=connections,
                                    seconds=wrk_seconds(seconds), workdir=Path(tmp))
                    except BenchmarkError as exc:
                        row.update(status="failed", reason=exc.message)
                        continue
                    errors = sum(stats["errors"].values())
                    if errors or not stats["requests"]:
                        row.update(status="failed", reason=f"{errors} errors in {stats['requests']} requests")
                    row["rounds"].append({"requests_per_s": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
                                          "p50_ms": round(stats["latency_us"]["p50"] / 1000, 3),
                                          "p99_ms": round(stats["latency_us"]["p99"] / 1000, 3)})
    for row in rows.values():
        for key in ("requests_per_s", "p50_ms", "p99_ms"):
            values = [r[key] for r in row["rounds"]]
            row[key] = round(statistics.median(values), 3) if values and row["status"] == "ok" else None
    return list(rows.values())


def _pick(rows: list[dict], server: str, request: str, connections: int) -> list[dict]:
    return [r for r in rows if r["server"] == server and r["request"] == request and r["connections"] == connections
            and r["status"] == "ok"]


def ratios(rows: list[dict]) -> list[dict]:
    """The issue's three ratios, for every mnist-edge model measured, against MLServer's best setting for each."""
    peer_c8 = max(_pick(rows, PEER, JSON_CASE, 8), key=lambda r: r["requests_per_s"], default=None)
    peer_c1 = min(_pick(rows, PEER, JSON_CASE, 1), key=lambda r: r["p50_ms"], default=None)
    found = []

    def add(key: str, ours: dict, theirs: dict | None, value: float | None) -> None:
        figure, how, bound, target = TARGETS[key]
        met = None if value is None else (value >= target if bound == ">=" else value <= target)
        found.append({"figure": figure, "ratio": how, "model": ours["model"], "value": value,
                      "peer_setting": theirs and theirs["setting"], "target": f"{bound} {target}", "met": met})

    for ours in _pick(rows, MNIST_EDGE, JSON_CASE, 8):
        add("c8", ours, peer_c8, peer_c8 and round(ours["requests_per_s"] / peer_c8["requests_per_s"], 3))
    for ours in _pick(rows, MNIST_EDGE, JSON_CASE, 1):
        add("c1", ours, peer_c1, peer_c1 and round(peer_c1["p50_ms"] / ours["p50_ms"], 3))
    for ours in _pick(rows, MNIST_EDGE, PNG_CASE, 1):
        add("png", ours, peer_c1, peer_c1 and round(ours["p50_ms"] / peer_c1["p50_ms"], 3))
    return found


def read_rounds(url: str, digit: np.ndarray, label: int, *, model: str, number: tuple[list[np.ndarray], str],
                seconds: float, rounds: int = ROUNDS) -> dict:
    """/v1/read of `number` against /v1/predict of one digit, both RGBA canvases at one connection, in alternating
    rounds: the ratio of their median p50s (a single cell of each can land in a busy second of a shared machine)."""
    kinds = cases(digit, model=model, number=number)
    targets = [Target(MNIST_EDGE, model, model, url, case, (1,)) for case in kinds
               if case.name == CANVAS_CASE or case.path == "/v1/read"]
    predict, read = measure(targets, label, seconds=seconds, rounds=rounds)
    both = predict["status"] == read["status"] == "ok"
    return {"rounds": rounds, "seconds_per_cell": wrk_seconds(seconds), "predict": predict, "read": read,
            "ratio": round(read["p50_ms"] / predict["p50_ms"], 3) if both else None}


def run_peer(peer: MLServer, mnist_edge_url: str, logs: Path, *, models_dir: Path, default_model: str,
             digit: np.ndarray, label: int, seconds: float, rounds: int = ROUNDS) -> dict:
    """Start MLServer at each setting beside the running mnist-edge server, measure all of them in one set of rounds."""
    name, model_file = onnx_fp32(models_dir)
    mine = [default_model] + ([name] if name != default_model else [])  # the shipped default, then the peer's file
    targets = [Target(MNIST_EDGE, f"{m} (default model)" if m == default_model else f"{m} (the peer's file)", m,
                      mnist_edge_url, _case(digit, m, JSON_CASE), (1, 8)) for m in mine]
    targets.append(Target(MNIST_EDGE, f"{default_model} (default model)", default_model, mnist_edge_url,
                          _case(digit, default_model, PNG_CASE), (1,)))
    started = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="mnist-edge-mlserver-") as tmp:
        for index, (setting, workers) in enumerate(SETTINGS.items()):
            server = stack.enter_context(running_mlserver(
                peer, Path(tmp) / f"setting{index}", logs / f"mlserver-{index}.log", name=name,
                model_file=model_file, parallel_workers=workers))
            started[setting] = {"cold_start_s": round(server.cold_start_s, 3),
                                "memory_ready": tree_memory_mb(server.process.pid), "log": server.log.name}
            targets.append(Target(PEER, setting, name, server.url, _case(digit, name, JSON_CASE), (1, 8)))
        rows = measure(targets, label, seconds=seconds, rounds=rounds)
    return {"server": PEER, "version": peer.version, "onnxruntime": peer.onnxruntime, "model_file": model_file.name,
            "runtime": "benchmarks/mlserver_onnx.py", "settings": started, "rounds": rounds,
            "seconds_per_cell": wrk_seconds(seconds), "rows": rows, "ratios": ratios(rows)}
