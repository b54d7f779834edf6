"""`mnist-edge bench`: the pytest-benchmark suites, the wrk load phase on a served model, the peer, the report."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist_edge.benchmarks.load import run_load, wrk_seconds
from mnist_edge.benchmarks.machine import describe
from mnist_edge.benchmarks.peer import PEERS, VENV_VAR, MLServer, find_mlserver
from mnist_edge.benchmarks.serve_process import running_server, tree_memory_mb
from mnist_edge.runtime.config import default_models_dir
from mnist_edge.runtime.errors import BenchmarkError
from mnist_edge.runtime.manifest import read_manifest

SUITES = Path(__file__).resolve().parent
SUITE_TIMEOUT_S = 1800  # bounds a hung suite; a full run takes a few minutes
NEEDS = ("pytest_benchmark", "matplotlib", "requests")  # beyond the serve extra; all three come with `.[all]`
NUMBER_DIGITS = 6  # /v1/read is timed on a number this long: the first MNIST test digits, side by side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench flags."""
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), metavar="DIR",
                        help="folder for the JSON, the Markdown table and the charts (default: docs/benchmarks)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: every suite once as a test (answers checked), ~1 s per load cell "
                             "(default: timed suites)")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="seconds of wrk per load cell (default: 10, --quick: 1)")
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(), metavar="DIR",
                        help="folder with manifest.json (default: the shipped models)")
    parser.add_argument("--data", type=Path, metavar="PATH",
                        help="MNIST, whose labels check every answer (default: $MNIST_DATA)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="server processes, passed on when `mnist-edge serve` has --workers (default: its own)")
    parser.add_argument("--peer", choices=PEERS,
                        help="also serve the fp32 ONNX file with this server, at its in-process and default settings, "
                             "and measure its /v2 JSON against mnist-edge's in alternating rounds (default: none)")
    parser.add_argument("--peer-venv", type=Path, metavar="DIR",
                        help=f"the venv MLServer is installed in (default: ${VENV_VAR}, else `mlserver` on PATH)")


def check_tools() -> None:
    """Import what the bench needs (a missing module becomes the CLI's install hint) and find wrk."""
    for module in NEEDS:
        importlib.import_module(module)
    if shutil.which("wrk") is None:
        raise BenchmarkError("bench needs wrk for the load phase: apt install wrk (or brew install wrk)")


def _junit_summary(path: Path) -> dict:
    """Counts and the failed or skipped tests (with their messages) from pytest's JUnit XML."""
    if not path.is_file():
        return {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "problems": []}
    suite = ET.parse(path).getroot().find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    problems = []
    for case in suite.iter("testcase"):
        for outcome in ("failure", "error", "skipped"):
            node = case.find(outcome)
            if node is not None:
                problems.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                                 "message": (node.get("message") or "")[:300]})
    return {**counts, "problems": problems}


def _condensed(bench: dict) -> dict:
    stats = bench["stats"]
    # Ungrouped benchmarks are named after their suite, e.g. "preprocess" for test_preprocess_benchmark.py.
    suite = bench["fullname"].partition("::")[0].rpartition("/")[2].removeprefix("test_").removesuffix("_benchmark.py")
    return {"name": bench["name"], "group": bench["group"] or suite, "params": bench.get("params") or {},
            "extra_info": bench.get("extra_info") or {},
            "stats": {k: stats[k] for k in ("min", "max", "mean", "stddev", "median", "iqr", "rounds", "ops")}}


def run_suites(out: Path, logs: Path, *, quick: bool, models_dir: Path, data: Path) -> dict:
    """pytest on benchmarks/ in a child process: timed with --benchmark-json, or once each with --benchmark-disable."""
    json_path = out / "benchmark.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", str(SUITES), "-q", "-p", "no:cacheprovider",
               "-o", "addopts=",  # the project's addopts skip benchmarks in the test run
               "--models-dir", str(models_dir), "--junitxml", str(logs / "suites.xml")]
    command += ["--benchmark-disable"] if quick else ["--benchmark-json", str(json_path)]
    env = {**os.environ, "MNIST_DATA": str(data), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(logs / "pytest.log", "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"the suites ran past {SUITE_TIMEOUT_S} s; see {logs / 'pytest.log'}") from None
    result = {"exit_code": done.returncode, **_junit_summary(logs / "suites.xml"), "benchmarks": [],
              "benchmark_json": None, "machine_info": None}
    if json_path.is_file():
        raw = json.loads(json_path.read_text())
        for bench in raw["benchmarks"]:  # every round's time: megabytes per run, and the statistics keep what matters
            bench["stats"].pop("data", None)
        json_path.write_text(json.dumps(raw, indent=2) + "\n")
        result.update(benchmark_json=json_path.name, machine_info=raw.get("machine_info"),
                      benchmarks=[_condensed(b) for b in raw["benchmarks"]])
    return result


def run_http(logs: Path, *, models_dir: Path, workers: int | None, seconds: float, digit: np.ndarray,
             label: int, number: tuple[list[np.ndarray], str] | None = None,
             peer: MLServer | None = None) -> tuple[dict, dict | None]:
    """Start the server, measure cold start and memory, run every load cell, then the peer rounds; stop it."""
    from mnist_edge.benchmarks.compare import read_rounds, run_peer

    model = read_manifest(models_dir).get("default")
    compared = None
    with running_server(logs / "serve.log", models_dir=models_dir, workers=workers) as server:
        ready = tree_memory_mb(server.process.pid)
        cells = run_load(server.url, digit, label, model=model, seconds=seconds, number=number)
        read = read_rounds(server.url, digit, label, model=model, number=number, seconds=seconds) if number else None
        after = tree_memory_mb(server.process.pid)
        if peer is not None:
            print(f"peer: MLServer {peer.version} ... logs: {logs / 'mlserver-*.log'}", flush=True)
            try:
                compared = run_peer(peer, server.url, logs, models_dir=models_dir, default_model=model, digit=digit,
                                    label=label, seconds=seconds)
            except BenchmarkError as exc:  # mnist-edge's own figures are still worth a report
                compared = {"server": "MLServer", "version": peer.version, "error": exc.message}
    http = {"flags": server.flags, "model": model, "cold_start_s": round(server.cold_start_s, 3),
            "memory_ready": ready, "memory_after_load": after, "seconds_per_cell": wrk_seconds(seconds),
            "cells": cells, "read_vs_predict": read}
    return http, compared


def _manifest_summary(models_dir: Path) -> dict:
    manifest = read_manifest(models_dir)
    keys = ("format", "precision", "size_bytes", "accuracy")
    return {"default": manifest.get("default"),
            "artifacts": {n: {k: e.get(k) for k in keys} for n, e in manifest["artifacts"].items()}}


def bench(args: argparse.Namespace) -> int:
    """Run everything, write results.json, results.md and the charts to --out; 1 when a suite failed."""
    check_tools()
    from mnist_edge.benchmarks.report import read_ratio_line, write_report
    from mnist_edge.train.data import ENV_VAR, load_mnist

    data = args.data or os.environ.get(ENV_VAR)
    if not data:
        raise BenchmarkError(f"bench checks every answer against MNIST: pass --data PATH or set {ENV_VAR}")
    mnist = load_mnist(data)
    out, logs = args.out, args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    seconds = args.duration if args.duration is not None else (1.0 if args.quick else 10.0)
    if seconds <= 0 or (args.workers is not None and args.workers < 1):
        raise BenchmarkError("--duration and --workers must be positive")
    if args.peer_venv is not None and args.peer is None:
        raise BenchmarkError("--peer-venv names where the peer is installed: pass --peer mlserver too")
    peer = find_mlserver(args.peer_venv) if args.peer else None  # before the suites: a missing peer fails at once
    started, load = datetime.now(timezone.utc), os.getloadavg()[0]  # before any process of ours adds to it
    print(f"suites ({'once each, --quick' if args.quick else 'timed'}) ... log: {logs / 'pytest.log'}", flush=True)
    suites = run_suites(out, logs, quick=args.quick, models_dir=args.models_dir, data=Path(data))
    print(f"load phase ({seconds:g} s per cell) ... log: {logs / 'serve.log'}", flush=True)
    try:
        http, compared = run_http(logs, models_dir=args.models_dir, workers=args.workers, seconds=seconds,
                                  digit=mnist.x_test[0], label=int(mnist.y_test[0]), peer=peer,
                                  number=(list(mnist.x_test[:NUMBER_DIGITS]),
                                          "".join(str(int(y)) for y in mnist.y_test[:NUMBER_DIGITS])))
    except BenchmarkError as exc:  # the suites' figures are still worth a report
        http, compared = {"error": exc.message, "cells": []}, None
    results = {"created": started.isoformat(timespec="seconds"), "quick": args.quick, "machine": describe(),
               "load_average_at_start": round(load, 2),
               "models": _manifest_summary(args.models_dir), "suites": suites, "http": http, "peer": compared}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    written = write_report(results, out)
    failed_cells = [c for c in http["cells"] if c["status"] != "ok"]
    load = http.get("error") or (f"{len(http['cells']) - len(failed_cells)} of {len(http['cells'])} cells ok, "
                                 f"cold start {http['cold_start_s']:.2f} s")
    print(f"suites: {suites['tests']} tests, {suites['failures'] + suites['errors']} failed, "
          f"{suites['skipped']} skipped; load: {load}")
    for cell in failed_cells:
        print(f"  failed: {cell['endpoint']} {cell['request']} c={cell['connections']}: {cell['reason']}")
    if http.get("read_vs_predict"):
        print(f"read: {read_ratio_line(http['read_vs_predict'])}")
    if compared is not None:
        _print_peer(compared)
    print("wrote " + ", ".join(str(p) for p in [out / "results.json", *written]))
    if suites["exit_code"] != 0:
        raise BenchmarkError(f"the benchmark suites failed (pytest exit {suites['exit_code']}); "
                             f"see {logs / 'pytest.log'}")
    if http.get("error"):
        raise BenchmarkError(f"the load phase could not run; see {logs / 'serve.log'}")
    if compared is not None and (compared.get("error") or any(r["status"] != "ok" for r in compared["rows"])):
        raise BenchmarkError(f"the peer comparison failed; see {out / 'results.md'} and {logs / 'mlserver-*.log'}")
    return 0


def _print_peer(compared: dict) -> None:
    """The peer's ratios, one line each, or why there are none."""
    if compared.get("error"):
        print(f"peer: {compared['error']}")
        return
    for ratio in compared["ratios"]:
        value = "n/a" if ratio["value"] is None else f"{ratio['value']:.2f}x"
        print(f"peer: {ratio['figure']} ({ratio['model']}), {ratio['ratio']}: {value} (target {ratio['target']})")
    for row in compared["rows"]:
        if row["status"] != "ok":
            print(f"  failed: {row['server']} {row['setting']} {row['request']} c={row['connections']}: "
                  f"{row['reason']}")
