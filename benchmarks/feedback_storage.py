"""Corrections under fire: concurrent writers, a SIGKILL of the whole server half-way, and what a correction costs.

python -m mnist_edge.benchmarks.feedback_storage --total 1000 --clients 8 --workers 2   # durability, then latency

Durability: `clients` threads post `total` corrections to a pre-forked `mnist-edge serve`; once half are acknowledged
the server's whole process group gets SIGKILL, the server starts again on the same port and database, and the clients
go on (a correction whose request got no answer is sent again). Then every acknowledged id must be in the database
with the client, sequence number and label it was sent with, and no request may have had a 5xx.
Latency: POST /v1/feedback (what the canvas sends: JSON, base64 PNG, the answer) against POST /v1/predict (the raw
PNG, as the canvas sends it), one client, interleaved so both see the same machine; medians.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_edge.benchmarks.serve_process import SERVE, free_port, launched
from mnist_edge.runtime.encode import encoded

RETRY_SECONDS = 120  # how long a client keeps resending a correction while the server is down


def drawings(count: int = 10) -> list[bytes]:
    """Canvas-sized PNGs of a bar at different places: what a correction's drawing is like (~1-2 KB)."""
    pngs = []
    for i in range(count):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[60 + 5 * i:220, 100 + 8 * i:124 + 8 * i] = 255
        pngs.append(encoded(canvas))
    return pngs


@dataclass
class Tally:
    """What the clients saw: acknowledged rows by id, statuses, and requests that got no answer."""

    acked: dict[int, tuple[int, int, int | None]] = field(default_factory=dict)  # id -> (client, seq, label)
    statuses: dict[int, int] = field(default_factory=dict)
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        """One answer with this status."""
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _post(connection: http.client.HTTPConnection, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = connection.getresponse()
    return response.status, response.read()


def _client(port: int, client: int, seqs: range, tally: Tally, pngs: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for seq in seqs:
        label = None if seq % 11 == 0 else seq % 10
        body = json.dumps({"image": base64.b64encode(pngs[seq % len(pngs)]).decode(), "label": label,
                           "answer": {"digit": (seq + 1) % 10, "is_digit": True, "client": client, "seq": seq}})
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                status, answer = _post(connection, "/v1/feedback", body.encode(), "application/json")
            except (OSError, http.client.HTTPException):  # the server is down: no answer, so not acknowledged
                connection.close()
                with tally.lock:
                    tally.unanswered += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            tally.count(status)
            if status == 201:
                with tally.lock:
                    tally.acked[json.loads(answer)["id"]] = (client, seq, label)
            break
    connection.close()


def _stored(db: Path) -> dict[int, tuple[int, int, int | None]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, label, answer_json FROM corrections").fetchall()
    finally:
        conn.close()
    return {row_id: (json.loads(answer)["client"], json.loads(answer)["seq"], label) for row_id, label, answer in rows}


def _serve(port: int, db: Path, log: Path, *, workers: int, models_dir: Path | None):
    """`mnist-edge serve` on `port` storing corrections in `db`, ready (a context manager)."""
    flags = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--feedback-db", str(db)]
    flags += ["--models-dir", str(models_dir)] if models_dir else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_EDGE_")}  # the caller's would change it
    return launched([*SERVE, *flags], flags=flags, url=f"http://127.0.0.1:{port}", ready_path="/readyz", log=log,
                    env=env)


def _wait_until_free(port: int, seconds: float = 30) -> None:
    """Return once `port` can be listened on again, as `serve` will (SO_REUSEADDR: connections in TIME_WAIT allowed)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_server(("127.0.0.1", port)).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def durability(db: Path, log_dir: Path, *, total: int, clients: int, workers: int, models_dir: Path | None = None
               ) -> dict:
    """Post `total` corrections from `clients` threads, SIGKILL the server half-way, restart it; what survived."""
    port, tally, pngs = free_port(), Tally(), drawings()
    threads = [threading.Thread(target=_client, args=(port, c, range(c, total, clients), tally, pngs), daemon=True)
               for c in range(clients)]
    started = time.perf_counter()
    with _serve(port, db, log_dir / "serve-1.log", workers=workers, models_dir=models_dir) as first:
        for thread in threads:
            thread.start()
        while len(tally.acked) < total // 2:
            if not any(thread.is_alive() for thread in threads):
                raise RuntimeError(f"the clients stopped before half the corrections were acknowledged: {tally}")
            time.sleep(0.001)
        os.killpg(first.process.pid, signal.SIGKILL)  # master and workers at once: a power cut, as far as they know
        first.process.wait()
        killed_at = len(tally.acked)
        _wait_until_free(port)  # a killed worker may still hold the listening socket for a moment
    with _serve(port, db, log_dir / "serve-2.log", workers=workers, models_dir=models_dir):
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - started
    stored = _stored(db)
    lost = {i: row for i, row in tally.acked.items() if stored.get(i) != row}
    return {"total": total, "clients": clients, "workers": workers, "acknowledged": len(tally.acked),
            "acknowledged_before_kill": killed_at, "stored": len(stored), "lost": len(lost),
            "extra_rows": len(stored) - len(tally.acked), "unanswered_requests": tally.unanswered,
            "statuses": dict(sorted(tally.statuses.items())),
            "server_errors": sum(n for status, n in tally.statuses.items() if status >= 500),
            "seconds": round(seconds, 1)}


def latency(db: Path, log_dir: Path, *, requests: int, workers: int, models_dir: Path | None = None) -> dict:
    """Median ms of POST /v1/feedback and POST /v1/predict from one client, interleaved."""
    port, png = free_port(), drawings()[3]
    times: dict[str, list[float]] = {"predict": [], "feedback": []}
    with _serve(port, db, log_dir / "serve-latency.log", workers=workers, models_dir=models_dir):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answer = json.loads(_post(connection, "/v1/predict?return_image=true", png, "image/png")[1])
        shown = {key: answer[key] for key in ("digit", "confidence", "is_digit", "backend")}
        correction = json.dumps({"image": base64.b64encode(png).decode(), "label": 7, "answer": shown}).encode()
        for i in range(requests + 20):  # the first 20 of each warm the connection and the workers
            for kind in ("predict", "feedback") if i % 2 else ("feedback", "predict"):
                begun = time.perf_counter()
                if kind == "predict":
                    status, _ = _post(connection, "/v1/predict?return_image=true", png, "image/png")
                else:
                    status, _ = _post(connection, "/v1/feedback", correction, "application/json")
                elapsed = (time.perf_counter() - begun) * 1000
                if status != (200 if kind == "predict" else 201):
                    raise RuntimeError(f"{kind} answered {status}")
                if i >= 20:
                    times[kind].append(elapsed)
        connection.close()
    p50 = {kind: statistics.median(values) for kind, values in times.items()}
    p90 = {kind: float(np.percentile(values, 90)) for kind, values in times.items()}
    return {"requests": requests,
            "predict_p50_ms": round(p50["predict"], 2), "feedback_p50_ms": round(p50["feedback"], 2),
            "predict_p90_ms": round(p90["predict"], 2), "feedback_p90_ms": round(p90["feedback"], 2),
            "ratio_p50": round(p50["feedback"] / p50["predict"], 2)}


def main(argv: list[str] | None = None) -> int:
    """Run both measurements on databases in --dir and print them as JSON; exit 1 when a row was lost or a 5xx came."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1000, help="corrections to post (default: 1000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2)")
    parser.add_argument("--latency-requests", type=int, default=300, help="requests of each kind (default: 300)")
    parser.add_argument("--dir", type=Path, default=Path("feedback-bench"),
                        help="where the databases and server logs go, on the disk to measure (default: %(default)s)")
    parser.add_argument("--models-dir", type=Path, help="models to serve (default: the shipped ones)")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    for name in ("durability.sqlite3", "latency.sqlite3"):
        for path in args.dir.glob(name + "*"):
            path.unlink()
    result = {"durability": durability(args.dir / "durability.sqlite3", args.dir, total=args.total,
                                       clients=args.clients, workers=args.workers, models_dir=args.models_dir),
              "latency": latency(args.dir / "latency.sqlite3", args.dir, requests=args.latency_requests,
                                 workers=args.workers, models_dir=args.models_dir)}
    print(json.dumps(result, indent=2))
    return 1 if result["durability"]["lost"] or result["durability"]["server_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
