"""`mnist-edge serve`: flags, logging, and the choice of server: pre-fork workers on Linux, waitress elsewhere."""

from __future__ import annotations

import argparse
import ctypes
import errno
import importlib
import logging
import os
import socket
import time
from pathlib import Path

# Nothing here may import prometheus_client (app, state, metrics): its multi-process mode is chosen at import time.
from mnist_edge.runtime.config import SOURCES, ServeConfig, config_from, env_name
from mnist_edge.runtime.errors import ConfigError, MnistEdgeError
from mnist_edge.runtime.feedback import FeedbackStore

IMPORTED_AT = time.perf_counter()  # fallback clock for cold start where /proc is missing
log = logging.getLogger("mnist_edge.serve")

HELP = {
    "models_dir": "folder with manifest.json and the model files (default: the shipped models)",
    "models": "model(s) to load, repeatable or comma-separated (default: every one that needs no TensorFlow)",
    "default_model": "model answering requests that name none (default: the manifest's)",
    "providers": "ONNX execution providers, comma-separated, best first (default: CPUExecutionProvider)",
    "onnx_threads": "intra-op threads per ONNX session (default: 1; requests run in parallel instead)",
    "workers": "server processes, each with its own models (default: one per CPU core; 1: a single process)",
    "threads": "threads per worker process (default: 2)",
    "host": "address to bind (default: 127.0.0.1; 0.0.0.0 to serve the network)",
    "port": "TCP port (default: 8000; 0 for any free one)",
    "token": "require `Authorization: Bearer TOKEN` (prefer the variable: flags show in `ps`)",
    "max_body_bytes": "largest request body in MB (default: 5)",
    "max_batch": "most images in one request (default: 64)",
    "max_digits": "most characters /v1/read may find in one image (default: 32)",
    "max_image_pixels": "largest decoded image, width x height (default: 4000000)",
    "read_timeout": "seconds a request may take to arrive, first byte to last; then 408 (default: 30)",
    "log_level": "DEBUG, INFO, WARNING or ERROR (default: INFO)",
    "feedback": "turn corrections off: /v1/feedback answers 404",
    "feedback_db": "SQLite file for corrections (default: $STATE_DIRECTORY under systemd, else "
                   "$XDG_DATA_HOME or ~/.local/share, /mnist-edge/feedback.sqlite3)",
    "feedback_max_bytes": "largest corrections database in MB; past it 507, nothing deleted (default: 512)",
}


# glibc returns freed heap memory to the kernel when more than M_TRIM_THRESHOLD is free at the top, and maps every
# block over M_MMAP_THRESHOLD on its own. Either way a request's image arrays came back as fresh pages to fault in:
# 55 % of a canvas PNG's preprocess time. Freed memory up to these sizes is kept for the next request instead.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
# Per heap: the master's, and one per thread that serves requests. A canvas request's arrays need about 2 MB, a
# 10-digit number 1,300 px wide more than 4 MB: with 4 MB kept and 1 MB blocks, each number read after digits faulted
# 380 pages back in (tests/test_load.py).
KEEP_FREED_BYTES = 16 * 1024 * 1024
HEAP_BLOCK_BYTES = 4 * 1024 * 1024  # larger blocks (the float copies of a photo at 1 MP or more) are mapped on their own


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed request-sized memory for reuse (inherited by forked workers); False elsewhere."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to load symbols from, or not one with mallopt (macOS)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags; each one also reads MNIST_EDGE_<NAME>, and values are checked by `config_from`."""
    for name, (flag, _, _) in SOURCES.items():
        help_text = f"{HELP[name]} [${env_name(name)}]"
        if flag.startswith("--no-"):  # a switch: its value comes as text, as its variable's does
            parser.add_argument(flag, action="store_const", const="1", help=help_text)
            continue
        kwargs = {"action": "append"} if name == "models" else {}
        parser.add_argument(flag, metavar=flag.removeprefix("--").split("-")[-1].upper(), help=help_text, **kwargs)


def process_age() -> float:
    """Seconds since this process started (Linux /proc), else since this module was imported."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - IMPORTED_AT


def log_models(registry) -> None:
    """One line per configured model: what it runs on, or why it failed."""
    for name, slot in registry.slots.items():
        if slot.loaded:
            providers = slot.info.get("providers")
            on = f" on {', '.join(providers)}" if providers else ""
            log.info("model %s loaded (%s %s%s)%s", name, slot.entry.get("format"), slot.entry.get("precision"), on,
                     " [default]" if name == registry.default else "")
        else:
            log.error("model %s FAILED: %s", name, slot.error)


def log_feedback(store: FeedbackStore | None) -> None:
    """Where corrections go and how many there are, or why they cannot be stored (prediction serves either way)."""
    if store is None:
        log.info("feedback off: /v1/feedback answers 404")
        return
    try:
        log.info("feedback: %d corrections in %s", store.stats()["count"], store.path)
    except MnistEdgeError as exc:
        log.warning("FEEDBACK CANNOT BE STORED: %s; /v1/feedback answers %d until it can", exc.message, exc.status)
    finally:
        store.close()  # this process may fork workers next: none may inherit the connection


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound before any server or worker exists so that a failure leaves nothing behind."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        return socket.create_server(address, family=family)
    except OSError as exc:
        hint = "; choose another with --port (0: any free one)" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}", setting="port") from None


def create_waitress(app, listener: socket.socket, *, threads: int, read_timeout: float = ServeConfig.read_timeout):
    """The waitress server for `app` on a bound socket."""
    import waitress

    # Flask answers an oversize body with our JSON 413; waitress refuses far larger ones. Bodies it takes stay in
    # memory (`inbuf_overflow`), never in a temporary file that a full or read-only disk would refuse.
    body_limit = 2 * (app.config.get("MAX_CONTENT_LENGTH") or 0) + 1024 * 1024
    # waitress reads requests in its event loop, so a slow client holds no thread; it closes a connection silent for
    # `channel_timeout` seconds, looking every `cleanup_interval`.
    return waitress.create_server(app, sockets=[listener], threads=threads, max_request_body_size=body_limit,
                                  inbuf_overflow=body_limit, channel_timeout=read_timeout,
                                  cleanup_interval=min(30.0, read_timeout))


def load_app(config: ServeConfig):
    """The Flask app with every model loaded and logged; None (after one error line) when no model loads."""
    from mnist_edge.runtime.api.app import create_app
    from mnist_edge.runtime.api.state import KEY

    app = create_app(config)
    registry = app.extensions[KEY].registry
    log_models(registry)
    log_feedback(app.extensions[KEY].feedback)
    if not registry.loaded():
        log.error("no model loaded from %s; nothing to serve", config.models_dir)
        return None
    return app


def check_models(config: ServeConfig) -> bool:
    """Load and log every model once in a short-lived child, before any worker exists; True when one loads at least.

    The child, not the master, loads them: ONNX Runtime and LiteRT keep process-wide state and threads that must not
    cross the fork into the workers, so the master never imports them.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        code = 1
        try:
            code = 0 if load_app(config) is not None else 1
        except MnistEdgeError as exc:  # e.g. an unknown --default-model: the master reports it as the CLI would
            os.write(writer, exc.message.encode())
        except Exception:
            log.exception("loading the models failed")
        finally:
            logging.shutdown()
            os._exit(code)  # no interpreter teardown: nothing of the child's models outlives it
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if message:
        raise ConfigError(message)
    return os.waitstatus_to_exitcode(status) == 0


def exposure_warning(config: ServeConfig) -> str | None:
    """What to say when the API listens beyond this machine with no token: anyone on the network may use it."""
    if config.token or config.host in ("127.0.0.1", "localhost", "::1"):
        return None
    return (f"serving on {config.host} WITHOUT A TOKEN: anyone who reaches this address may use the API; "
            "set MNIST_EDGE_TOKEN (or --token) to require one")


def serve(args: argparse.Namespace) -> int:
    """Build the config, bind, check the models and serve until SIGTERM or Ctrl-C: pre-fork workers, else waitress."""
    from mnist_edge.runtime.api import workers as prefork

    config = config_from(args)
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started_at = time.time() - process_age()
    keep_freed_memory()
    if warning := exposure_warning(config):
        log.warning(warning)
    listener = bind(config.host, config.port)
    try:
        if not prefork.can_fork():
            return _serve_waitress(config, listener)
        prefork.check_gunicorn()
        with prefork.metrics_dir() as metrics:
            # Flask, NumPy, Pillow and prometheus_client, imported once before any fork so that the model check and
            # every worker share them; the model runtimes are imported by each worker's backends, after the fork.
            importlib.import_module("mnist_edge.runtime.api.app")
            if not check_models(config):
                return 1
            return prefork.run_workers(config, listener, workers=config.workers or prefork.cpu_cores(),
                                       started_at=started_at, metrics=metrics)
    finally:
        listener.close()


def _serve_waitress(config: ServeConfig, listener: socket.socket) -> int:
    if (config.workers or 1) > 1:
        log.warning("--workers needs Linux; serving from this one process with %d threads", config.threads)
    app = load_app(config)
    if app is None:
        return 1
    from mnist_edge.runtime.api.warmup import warm_here

    warm_here(app)  # waitress' own threads build their LiteRT interpreters on their first requests
    server = create_waitress(app, listener, threads=config.threads, read_timeout=config.read_timeout)
    auth = "bearer token required" if config.token else "no token"
    log.info("serving on http://%s:%s (%d threads, %s), ready %.2f s after process start; models from %s",
             server.effective_host, server.effective_port, config.threads, auth, process_age(),
             Path(config.models_dir).resolve())
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    log.info("stopped")
    return 0
