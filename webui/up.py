"""`mnist-edge up`: the API and the canvas UI as two child processes, started, watched and stopped together."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from mnist_edge.runtime.config import SOURCES, ServeConfig, env_name
from mnist_edge.webui.client import TOKEN_VAR, URL_VAR, answers_ok

START_TIMEOUT = 90.0  # seconds for both to answer: a Pi loads Streamlit and six models in well under this
STOP_GRACE = 10.0  # seconds a child gets to finish after SIGTERM before it is killed
APP = Path(__file__).with_name("app.py")


class UpError(Exception):
    """Why `up` could not bring the product up, in one line."""


@dataclass
class Child:
    """One supervised process (its own process group, so stopping it stops whatever it forked) and its last lines."""

    name: str
    process: subprocess.Popen
    tail: deque = field(default_factory=lambda: deque(maxlen=20))

    def pump(self) -> None:
        """Copy the child's output to ours, each line prefixed with its name, keeping the last few for errors."""
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.tail.append(line)
            print(f"{self.name:>3} | {line}", flush=True)

    def last_words(self) -> str:
        """The child's last meaningful log line, for a one-line error."""
        lines = [line.strip() for line in self.tail if line.strip() and not line.startswith(" ")]
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        """SIGTERM to the group, then SIGKILL after the grace period; returns once it is gone."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `up` flags: where the two servers listen and what the API serves."""
    parser.add_argument("--host", default="127.0.0.1", help="address both bind to (default: 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=8000, help="the API's port (default: 8000)")
    parser.add_argument("--ui-port", type=int, default=8501, help="the canvas UI's port (default: 8501)")
    parser.add_argument("--models-dir", help="folder with manifest.json (default: the shipped models)")
    parser.add_argument("--model", help="model(s) the API loads, comma-separated (default: every non-Keras one)")
    parser.add_argument("--token", help=f"require this bearer token on the API (prefer ${TOKEN_VAR}: flags show in ps)")


def _port_free(host: str, port: int) -> bool:
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> Child:
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    child = Child(name, process)
    threading.Thread(target=child.pump, name=f"{name}-log", daemon=True).start()
    return child


WILDCARDS = ("0.0.0.0", "::", "")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _local(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard bind is reached on loopback)."""
    return _bracketed("127.0.0.1" if host in WILDCARDS else host)


def lan_address() -> str:
    """This machine's address on its network (what a phone beside it would type), else its hostname."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP connect only picks the outgoing interface: nothing is sent
            address = probe.getsockname()[0]
    except OSError:  # no route at all: the name is the best guess
        return socket.gethostname()
    return socket.gethostname() if address.startswith("127.") or address == "0.0.0.0" else address


def _shown(host: str) -> str:
    """The address to print for a server bound to `host`: another device's way in when it listens on every one."""
    return _bracketed(lan_address()) if host in WILDCARDS else _local(host)


def upload_limit_mb(environ: dict[str, str] | None = None) -> int:
    """The API's request-body limit (MNIST_EDGE_MAX_BODY_MB, else serve's default) in whole MB for Streamlit."""
    raw = (os.environ if environ is None else environ).get(env_name("max_body_bytes"))
    limit = ServeConfig.max_body_bytes
    if raw:
        try:
            limit = SOURCES["max_body_bytes"][2](raw)
        except ValueError:
            pass  # the API refuses it at start with one line; this only sizes the uploader
    return max(1, limit // (1024 * 1024))  # Streamlit counts whole MB of 1024 * 1024 bytes, as the API does


def ui_command(host: str, port: int, *, script: Path = APP) -> list[str]:
    """Streamlit serving the canvas app (or another `script`) headless on host:port, quiet, no developer tools,
    taking uploads up to the API's limit. .streamlit/config.toml gives a bare `streamlit run` the same settings."""
    return [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true", "--server.address", host,
            "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
            "--server.maxUploadSize", str(upload_limit_mb())]


def _commands(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, str]]:
    """The API's and the UI's command lines and their shared environment."""
    api = [sys.executable, "-m", "mnist_edge.cli", "serve", "--host", args.host, "--port", str(args.api_port)]
    if args.models_dir:
        api += ["--models-dir", str(args.models_dir)]
    if args.model:
        api += ["--model", args.model]
    ui = ui_command(args.host, args.ui_port)
    # PYTHONSAFEPATH: the working folder is not put on the children's sys.path, so a checkout's own mnist_edge/
    # (which has no runtime/) cannot shadow the installed package when `up` runs inside one.
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONSAFEPATH="1")
    env[URL_VAR] = f"http://{_local(args.host)}:{args.api_port}"  # where the UI finds the API
    token = args.token or os.environ.get(TOKEN_VAR)
    if token:
        env[TOKEN_VAR] = token  # the API and the UI both read it; never on a command line
    return api, ui, env


def _wait_ready(children: list[Child], checks: dict[str, str], stop: threading.Event) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = dict(checks)
    while pending:
        for child in children:
            if child.process.poll() is not None:
                raise UpError(f"the {child.name.upper()} exited at start (status {child.process.returncode}): "
                              f"{child.last_words()}")
        for name, url in list(pending.items()):
            if answers_ok(url, 1.0):
                del pending[name]
        if stop.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            raise UpError(f"{' and '.join(pending)} did not answer within {START_TIMEOUT:.0f} s")
        stop.wait(0.2)


def up(args: argparse.Namespace) -> int:
    """Start the API and the UI, wait until both answer, print the URL, and stop both on Ctrl-C or SIGTERM."""
    for what, port, flag in (("API", args.api_port, "--api-port"), ("UI", args.ui_port, "--ui-port")):
        if not _port_free(args.host, port):
            raise UpError(f"port {port} on {args.host} is in use (another mnist-edge?); "
                          f"pick another {what} port with {flag}")
    api_argv, ui_argv, env = _commands(args)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children = [_spawn("api", api_argv, env)]
    try:
        ui_url = f"http://{_local(args.host)}:{args.ui_port}"
        # The UI starts once the API serves: an API that cannot start (a wrong --model) is then the only thing said.
        _wait_ready(children, {"the API": f"{env[URL_VAR]}/readyz"}, stop)
        children.append(_spawn("ui", ui_argv, env))
        _wait_ready(children, {"the UI": f"{ui_url}/_stcore/health"}, stop)
        shown = _shown(args.host)
        print(f"mnist-edge is up: open http://{shown}:{args.ui_port} to draw (API at http://{shown}:{args.api_port}); "
              "Ctrl-C stops both", flush=True)
        while not stop.wait(0.5):
            for child in children:
                if child.process.poll() is not None:
                    raise UpError(f"the {child.name.upper()} stopped (status {child.process.returncode}): "
                                  f"{child.last_words()}; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            child.stop()
        signal.signal(signal.SIGTERM, previous)
    print("mnist-edge: stopped the API and the UI", flush=True)
    return 0
