"""A real waitress server in a thread on a loopback port, for the tests and benchmarks (never `serve`'s path).

It drives waitress' own loop from the thread (`wasyncore` and the server's socket map, not public API: waitress is
pinned to the 3.0 series it is tested with), so `close()` can stop it cleanly between tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mnist_edge.runtime.api.server import bind, create_waitress


@dataclass
class BackgroundServer:
    """A real waitress server in a thread, on a loopback port; `close()` stops it."""

    server: object
    thread: threading.Thread
    stopping: threading.Event

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def close(self) -> None:
        """Stop the loop, then (from this thread, so no select() sees a closed socket) close every socket."""
        from waitress import wasyncore

        self.stopping.set()
        self.thread.join(timeout=10)
        self.server.task_dispatcher.shutdown()
        wasyncore.close_all(self.server._map)  # the listener and any kept-alive connections


def start_background(app, *, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> BackgroundServer:
    """Serve `app` with waitress from a daemon thread (port 0: a free one); for tests and benchmarks."""
    from waitress import wasyncore

    server = create_waitress(app, bind(host, port), threads=threads)
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, name="waitress", daemon=True)
    thread.start()
    return BackgroundServer(server, thread, stopping)
