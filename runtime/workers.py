"""The pre-fork server: a gunicorn master on our bound socket, N workers that each build their own app after the fork.

ONNX Runtime sessions and TFLite interpreters must not cross a fork, so the master never loads a model: every worker
calls `create_app` itself. prometheus_client's multi-process mode adds up the workers' metrics from files in
PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_edge.runtime.config import ServeConfig

log = logging.getLogger("mnist_edge.serve")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's; read when it is first imported

# Seconds a worker may take to finish its in-flight requests after SIGTERM; then it is killed. Requests take
# milliseconds, and a service manager's stop timeout (systemd: 90 s, Kubernetes: 30 s) must not run out first.
GRACEFUL_SECONDS = 8


def can_fork() -> bool:
    """Whether this platform runs the pre-fork server (Linux; elsewhere waitress serves from one process)."""
    return sys.platform.startswith("linux")


def cpu_cores() -> int:
    """CPU cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def metrics_dir() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR, or a private temporary one (removed at exit) set as it when unset.

    Enter it before anything imports prometheus_client: the library picks its multi-process mode at import.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="mnist-edge-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)
            del os.environ[MULTIPROC_ENV]


def _check_multiprocess_metrics() -> None:
    from mnist_edge.runtime.metrics import multiprocess_mode

    if not multiprocess_mode():
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV} was set: workers would not add up")


def _json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it cannot parse (before Flask sees it), in the API's v1 error shape, not HTML."""
    from gunicorn.util import write_nonblock

    code = reason.lower().replace(" ", "_")  # gunicorn's reason phrase: "bad_request", "uri_too_long", ...
    body = json.dumps({"error": {"code": code, "message": mesg or reason}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    write_nonblock(sock, head.encode("latin-1") + body)


def _options(config: ServeConfig, fd: int, *, workers: int) -> dict:
    return {
        "bind": [f"fd://{fd}"],  # bound by us before any fork: a taken port fails before anything starts
        "workers": workers,
        "worker_class": "gthread",  # keeps connections alive and overlaps a request's I/O with another's work
        "threads": config.threads,
        "graceful_timeout": GRACEFUL_SECONDS,
        "control_socket_disable": True,  # gunicorn 25.1+ would leave a control socket file in the working folder
        "loglevel": config.log_level.lower(),
        "proc_name": "mnist-edge",
    }


def run_workers(config: ServeConfig, listener: socket.socket, *, workers: int, started_at: float, metrics: Path) -> int:
    """Serve the app, built by each worker after the fork, until SIGTERM or SIGINT; the master's exit status.

    gunicorn takes the listening socket over (and closes it at the end).
    """
    from gunicorn import util
    from gunicorn.app.base import BaseApplication
    from prometheus_client.multiprocess import mark_process_dead

    util.write_error = _json_error  # gunicorn has no setting for its error page; its workers call this one function

    _check_multiprocess_metrics()
    for stale in metrics.glob("*.db"):  # an earlier run's counts, or the model check's, would be added to ours
        stale.unlink()
    master = os.getpid()
    host, port = listener.getsockname()[:2]
    fd = listener.detach()
    ready = multiprocessing.Value("i", 0)  # shared memory: workers count themselves in as they become ready
    auth = "bearer token required" if config.token else "no token"
    log.info("metrics of every worker in %s", metrics)

    def post_worker_init(worker) -> None:
        with ready.get_lock():
            ready.value += 1
            count = ready.value
        if count == workers:
            log.info("serving on http://%s:%s (%d workers x %d threads, %s), ready %.2f s after process start",
                     host, port, workers, config.threads, auth, time.time() - started_at)
        elif count > workers:
            log.info("worker %d ready (replacing one that died)", worker.pid)

    def child_exit(server, worker) -> None:
        mark_process_dead(worker.pid, path=str(metrics))  # its in-flight gauge goes; its counts stay

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in _options(config, fd, workers=workers).items():
                self.cfg.set(key, value)
            self.cfg.set("post_worker_init", post_worker_init)
            self.cfg.set("child_exit", child_exit)

        def load(self):
            from mnist_edge.runtime.app import create_app

            return create_app(config)

    try:
        Server().run()
    except SystemExit as stop:  # the arbiter, and each worker when it is done, end with sys.exit(status)
        status = stop.code if isinstance(stop.code, int) else 1
    else:
        status = 0
    if os.getpid() != master:
        # A worker leaves here, at once: the cleanup above us (the metrics folder, the socket) is the master's.
        logging.shutdown()
        os._exit(status)
    log.info("stopped: workers drained and gone, exit %d", status)
    return status
