"""The pre-fork server: a gunicorn master on our bound socket, N workers that each build their own app after the fork.

ONNX Runtime sessions and TFLite interpreters must not cross a fork, so the master never loads a model: every worker
calls `create_app` itself. prometheus_client's multi-process mode adds up the workers' metrics from files in
PROMETHEUS_MULTIPROC_DIR. The worker class (runtime/api/reading_worker.py) gives a thread only requests that have arrived whole.
Each worker warms every one of its threads up (runtime/api/warmup.py) before it accepts a connection.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.errors import ConfigError
from mnist_edge.runtime.api.reading_worker import json_error, reading_worker

log = logging.getLogger("mnist_edge.serve")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's; read when it is first imported

# Seconds a worker may take to finish its in-flight requests after SIGTERM; then it is killed. Requests take
# milliseconds, and a service manager's stop timeout (systemd: 90 s, Kubernetes: 30 s) must not run out first.
GRACEFUL_SECONDS = 8
# Each worker's metric files are allocated on disk when it starts: prometheus_client maps sparse files, and writing into
# one on a full disk kills the process (SIGBUS). Its entries need ~100 KB; a file that outgrows this doubles, sparse.
METRIC_FILE_BYTES = 256 * 1024
METRIC_FILES = ("counter", "histogram", "gauge_livesum")  # prometheus_client's file per kind our Metrics uses


# The worker class reads gunicorn's internals (gthread's _DEFER, the parser's unreader); these are the releases it is
# tested with, and pyproject.toml's `serve` extra pins the same range.
GUNICORN_TESTED = ((27, 0), (28, 0))  # from, up to but not including


def check_gunicorn() -> None:
    """A ConfigError naming the install command when the gunicorn found is not one the worker class is tested with."""
    import gunicorn

    low, high = GUNICORN_TESTED
    if not low <= tuple(gunicorn.version_info[:2]) < high:
        wanted = f"gunicorn>={low[0]}.{low[1]},<{high[0]}"
        raise ConfigError(f"gunicorn {gunicorn.__version__} is installed, but mnist-edge's worker runs on {wanted} only: "
                          f"pip install '{wanted}'")


def can_fork() -> bool:
    """Whether this platform runs the pre-fork server (Linux; elsewhere waitress serves from one process)."""
    return sys.platform.startswith("linux")


def cpu_cores() -> int:
    """CPU cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def reserve_metric_files(folder: Path, pid: int) -> None:
    """Allocate the metric files of process `pid` on disk now, so that no later write needs a free block."""
    paths = [folder / f"{kind}_{pid}.db" for kind in METRIC_FILES]
    try:
        for path in paths:
            with open(path, "a+b") as fh:
                os.posix_fallocate(fh.fileno(), 0, METRIC_FILE_BYTES)
    except OSError:
        for path in paths:  # an empty file would break every other worker's /metrics
            with suppress(OSError):
                path.unlink()
        raise


@contextmanager
def metrics_dir() -> Iterator[Path | None]:
    """PROMETHEUS_MULTIPROC_DIR, or a private temporary one (removed at exit) set as it when unset; None when unusable.

    Enter it before anything imports prometheus_client: the library picks its multi-process mode at import. A folder
    that cannot be made or written (read-only or full disk) must not stop the service: each worker then keeps its own
    metrics, and /metrics shows the answering worker's.
    """
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else None
    try:
        path = path or Path(tempfile.mkdtemp(prefix="mnist-edge-metrics-"))
        path.mkdir(parents=True, exist_ok=True)
        reserve_metric_files(path, os.getpid())  # a trial write; the stale-file sweep at start removes it
    except OSError as exc:
        log.warning("METRICS PER WORKER ONLY: cannot write %s (%s); /metrics shows the answering worker's counts",
                    path or tempfile.gettempdir(), exc.strerror or exc)
        if path and not given:
            shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)
        yield None
        return
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)
            del os.environ[MULTIPROC_ENV]


def _check_multiprocess_metrics() -> None:
    from mnist_edge.runtime.api.metrics import multiprocess_mode

    if not multiprocess_mode():
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV} was set: workers would not add up")


def _options(config: ServeConfig, fd: int, *, workers: int) -> dict:
    return {
        "bind": [f"fd://{fd}"],  # bound by us before any fork: a taken port fails before anything starts
        "workers": workers,
        "worker_class": reading_worker(read_timeout=config.read_timeout, max_body=config.max_body_bytes),
        "threads": config.threads,
        # The heartbeat file each worker touches: in memory, where a full or read-only disk cannot stop a worker.
        "worker_tmp_dir": "/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        "graceful_timeout": GRACEFUL_SECONDS,
        "control_socket_disable": True,  # gunicorn 25.1+ would leave a control socket file in the working folder
        "loglevel": config.log_level.lower(),
        "proc_name": "mnist-edge",
    }


def run_workers(config: ServeConfig, listener: socket.socket, *, workers: int, started_at: float,
                metrics: Path | None) -> int:
    """Serve the app, built by each worker after the fork, until SIGTERM or SIGINT; the master's exit status.

    gunicorn takes the listening socket over (and closes it at the end). `metrics` None: each worker counts alone.
    """
    from gunicorn import util
    from gunicorn.app.base import BaseApplication
    from prometheus_client.multiprocess import mark_process_dead

    util.write_error = json_error  # gunicorn has no setting for its error page; its workers call this one function

    if metrics is not None:
        _check_multiprocess_metrics()
        for stale in metrics.glob("*.db"):  # an earlier run's counts, or the model check's, would be added to ours
            stale.unlink()
        log.info("metrics of every worker in %s", metrics)
    master = os.getpid()
    host, port = listener.getsockname()[:2]
    fd = listener.detach()
    ready = multiprocessing.Value("i", 0)  # shared memory: workers count themselves in as they become ready
    auth = "bearer token required" if config.token else "no token"

    def post_fork(server, worker) -> None:
        try:
            reserve_metric_files(metrics, os.getpid())
        except OSError as exc:
            from mnist_edge.runtime.api.metrics import keep_metrics_in_process

            keep_metrics_in_process()
            log.warning("METRICS OF WORKER %d KEPT APART: cannot write %s (%s); /metrics misses it when another "
                        "worker answers", os.getpid(), metrics, exc.strerror or exc)

    def post_worker_init(worker) -> None:
        # Before the worker's loop starts, so it accepts no connection until every one of its threads is warm.
        from mnist_edge.runtime.api.warmup import warm_threads  # imports prometheus_client: only once its folder is set

        try:
            seconds = warm_threads(worker.wsgi, worker.tpool, config.threads)
            log.debug("worker %d warmed up in %.2f s", worker.pid, seconds)
        except Exception:  # a slow first request is better than no worker
            log.exception("worker %d: warming up failed; its first requests will be slow", worker.pid)
        with ready.get_lock():
            ready.value += 1
            count = ready.value
        if count == workers:
            log.info("serving on http://%s:%s (%d workers x %d threads, %s), ready %.2f s after process start; "
                     "models from %s", host, port, workers, config.threads, auth, time.time() - started_at,
                     Path(config.models_dir).resolve())
        elif count > workers:
            log.info("worker %d ready (replacing one that died)", worker.pid)

    def child_exit(server, worker) -> None:
        with suppress(OSError):  # a folder gone read-only must not stop the master from replacing the worker
            mark_process_dead(worker.pid, path=str(metrics))  # its in-flight gauge goes; its counts stay

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in _options(config, fd, workers=workers).items():
                self.cfg.set(key, value)
            self.cfg.set("post_worker_init", post_worker_init)
            if metrics is not None:
                self.cfg.set("post_fork", post_fork)
                self.cfg.set("child_exit", child_exit)

        def load(self):
            from mnist_edge.runtime.api.app import create_app

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
