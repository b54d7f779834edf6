"""Browser-test plumbing: free ports, `mnist-edge up` and lone servers as subprocesses, Debian's chromium."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# free_port: the one way to pick a port, re-exported for the tests that import it from here.
from mnist_edge.benchmarks.serve_process import free_port  # noqa: F401

CHROMIUM = os.environ.get("MNIST_EDGE_CHROMIUM", "/usr/bin/chromium")
# No sandbox as root; no GPU on a server; no calls home, which this closed network refuses by the dozen.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    """Debian's chromium; CI must have it (.ci/run installs it), elsewhere the test skips with how to get it."""
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run must `apt-get install chromium`")
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (or set MNIST_EDGE_CHROMIUM)")


class Process:
    """A child process whose output is read line by line in a thread, so waiting for a line never blocks forever."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.popen = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip())
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float = 90) -> str:
        """The first output line containing `text`; fails with the output so far if it never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.popen.poll() is not None:
                    break
                continue
            if text in line:
                return line.rstrip()
        raise AssertionError(f"no line with {text!r}; output:\n" + "\n".join(self.lines[-30:]))

    def wait(self, timeout: float = 20) -> int:
        """Its exit status once it has ended and its output is read (killed, with the error, past the timeout)."""
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise
        finally:
            self._reader.join(5)
            self.popen.stdout.close()
        return status

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the process (not its group: it must stop its own children) and return its exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.wait(timeout)

    def kill_group(self) -> None:
        """Whatever is left of it and its children, gone."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cli(*args: str) -> list[str]:
    """The `mnist-edge` command line for this interpreter."""
    return [sys.executable, "-m", "mnist_edge.cli", *args]


def wait_http(url: str, timeout: float = 60) -> None:
    """Until GET url answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


def port_closed(port: int) -> bool:
    """Nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0
