"""Servers as subprocesses (`mnist-edge serve`, a peer): start on a free port, wait until ready, measure memory, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.runtime.errors import BenchmarkError
from mnist_edge.webui.client import answers_ok

# -P: the working folder stays off the server's sys.path, so a checkout's own mnist_edge/ cannot shadow the installed
# package when `mnist-edge bench` runs inside one.
SERVE = [sys.executable, "-P", "-m", "mnist_edge.cli", "serve"]


@dataclass
class Server:
    """A running server process and what its start cost."""

    process: subprocess.Popen
    url: str
    cold_start_s: float
    flags: list[str]
    log: Path


def free_port() -> int:
    """A TCP port that was free a moment ago on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_flags() -> set[str]:
    """The flags `mnist-edge serve --help` lists, so optional ones (--workers) are passed only where they exist."""
    helptext = subprocess.run([*SERVE, "--help"], capture_output=True, text=True, timeout=60).stdout
    return {word.rstrip(",") for word in helptext.split() if word.startswith("--")}


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        kids += [int(k) for k in task.read_text().split()]
    return kids


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (Linux /proc)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            todo += _children(current)
        except OSError:  # it exited while we looked
            continue
    return tree


def _kb(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory_mb(pid: int) -> dict:
    """Memory of a process tree: RSS summed (shared pages counted in every process) and PSS (shared out)."""
    pids = process_tree(pid)
    rss = sum(_kb(Path(f"/proc/{p}/status"), "VmRSS") for p in pids)
    pss = sum(_kb(Path(f"/proc/{p}/smaps_rollup"), "Pss") for p in pids)
    return {"processes": len(pids), "rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1) if pss else None}


def _log_tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL to the whole session if it has not ended within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # workers the server forked must not outlive it; the session is ours alone
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=timeout)


@contextmanager
def launched(command: list[str], *, flags: list[str], url: str, ready_path: str, log: Path, env: dict[str, str],
             cwd: Path | None = None, timeout: float = 120) -> Iterator[Server]:
    """Start a server process in its own session, yield once `ready_path` answers 200, stop it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
    try:
        while not answers_ok(url + ready_path, 2):
            if process.poll() is not None:
                raise BenchmarkError(f"the server exited with status {process.returncode} before it was ready:\n"
                                     f"{_log_tail(log)}")
            if time.perf_counter() - started > timeout:
                raise BenchmarkError(f"the server was not ready within {timeout:.0f} s:\n{_log_tail(log)}")
            time.sleep(0.02)
        yield Server(process, url, time.perf_counter() - started, flags, log)
    finally:
        stop(process)


@contextmanager
def running_server(log: Path, *, models_dir: Path | None = None, workers: int | None = None,
                   timeout: float = 120) -> Iterator[Server]:
    """Start `mnist-edge serve` on a free loopback port, yield once /readyz answers 200, stop it on exit."""
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port)]
    if models_dir is not None:
        flags += ["--models-dir", str(models_dir)]
    if workers is not None and "--workers" in serve_flags():
        flags += ["--workers", str(workers)]
    # The caller's MNIST_EDGE_* settings (a token, another port) would change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_EDGE_")}
    with launched([*SERVE, *flags], flags=flags, url=f"http://127.0.0.1:{port}", ready_path="/readyz", log=log,
                  env=env, timeout=timeout) as server:
        yield server
