"""Load against a real `mnist-edge serve --workers 2`: mixed /v1 PNG and /v2 JSON traffic, memory, a SIGKILL under load.

The run stops by itself after MNIST_EDGE_SOAK_SECONDS (5 here; 60 for the full soak). Latency and throughput are
printed (`pytest -s`), never asserted: the machine is shared.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from test_workers import Served, two_workers

from mnist_edge.benchmarks.load import number_png, rgba_png

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONNECTIONS = 16
SOAK_SECONDS = float(os.environ.get("MNIST_EDGE_SOAK_SECONDS", "5"))
WARM_UP_REQUESTS = 200  # first answers allocate caches and arenas for good; growth is measured after them
MAX_GROWTH_KB = 20 * 1024
DIGIT = 7  # what both examples show


@dataclass
class Tally:
    """What the load threads saw: latencies of right answers, wrong answers as text, connections cut off."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # an error status or a wrong digit
    broken: list[str] = field(default_factory=list)  # "#<connection> <kind>: <exception>", the request lost
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, label: str, seconds: float) -> None:
        """Print requests, rate, p50/p99 and failures (a report, never an assertion)."""
        done = np.array(self.latencies) * 1000
        p50, p99 = np.percentile(done, [50, 99]) if len(done) else (float("nan"), float("nan"))
        print(f"\n{label}: {len(done)} right answers in {seconds:.1f} s ({len(done) / seconds:.0f} req/s), "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {CONNECTIONS} connections, "
              f"{len(self.failures)} wrong, {len(self.broken)} cut off")


def _requests() -> list[tuple[str, bytes, str, str]]:
    """(path, body, content type, kind) for the two kinds of traffic, alternated by every connection."""
    png = (EXAMPLES / "canvas_7.png").read_bytes()
    v2 = (EXAMPLES / "v2_7.json").read_bytes()
    return [("/v1/predict", png, "image/png", "v1"),
            ("/v2/models/onnx-int8/infer", v2, "application/json", "v2")]


def _digit(kind: str, body: bytes) -> int:
    answer = json.loads(body)
    if kind == "v1":
        return answer["digit"]
    return int(np.argmax(answer["outputs"][0]["data"]))


def _client(host: str, port: int, *, until: float, count: int, tally: Tally, offset: int) -> None:
    """One keep-alive connection sending mixed requests until `until` or `count` sent; a broken one is reopened."""
    kinds = _requests()
    connection = http.client.HTTPConnection(host, port, timeout=30)
    for sent in range(offset, offset + count):
        if time.monotonic() >= until:
            break
        path, body, content_type, kind = kinds[sent % len(kinds)]
        start = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:  # the worker behind this connection died
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
            with tally.lock:
                tally.broken.append(f"#{offset} {kind}: {exc!r}")
            continue
        took = time.perf_counter() - start
        with tally.lock:
            if response.status != 200:
                tally.failures.append(f"{kind}: {response.status} {answer[:200]!r}")
            elif (digit := _digit(kind, answer)) != DIGIT:
                tally.failures.append(f"{kind}: read {digit}")
            else:
                tally.latencies.append(took)
    connection.close()


def load(url: str, *, seconds: float, tally: Tally, count: int = 10**9) -> list[threading.Thread]:
    """Start CONNECTIONS client threads that stop by themselves after `seconds` (or `count` requests each)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=_client, args=(host, int(port)), daemon=True,
                                kwargs={"until": until, "count": count, "tally": tally, "offset": n})
               for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    return threads


def run_load(served: Served, label: str, *, seconds: float, count: int = 10**9) -> Tally:
    """Load the server until done, then print the report."""
    tally = Tally()
    started = time.monotonic()
    for thread in load(served.url, seconds=seconds, tally=tally, count=count):
        thread.join()
    tally.report(label, time.monotonic() - started)
    return tally


def rss_kb(pid: int) -> int:
    """Resident memory of one process, in kB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def served(shipped_models, tmp_path_factory):
    """Two workers on the shipped models."""
    yield from two_workers(tmp_path_factory.mktemp("load"), shipped_models)


def test_mixed_load_is_answered_right_without_errors_or_memory_growth(served):
    warm = run_load(served, "warm-up", seconds=60, count=WARM_UP_REQUESTS // CONNECTIONS)
    assert not warm.failures and not warm.broken, (warm.failures + warm.broken)[:5]
    workers = served.workers()
    assert len(workers) == 2
    before = {pid: rss_kb(pid) for pid in workers}
    tally = run_load(served, "soak", seconds=SOAK_SECONDS)
    after = {pid: rss_kb(pid) for pid in workers}
    assert served.workers() == workers  # none died and was replaced
    growth = {pid: after[pid] - before[pid] for pid in workers}
    print("resident memory per worker, kB: "
          + ", ".join(f"{pid} {before[pid]} -> {after[pid]} ({growth[pid]:+d})" for pid in workers))
    assert not tally.failures and not tally.broken, (tally.failures + tally.broken)[:5]
    assert len(tally.latencies) >= CONNECTIONS
    assert all(kb < MAX_GROWTH_KB for kb in growth.values()), growth


def minor_faults(pid: int) -> int:
    """Pages a process has faulted in from nowhere (fresh or returned memory), from /proc/<pid>/stat."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[7])


def test_a_number_read_after_digits_reuses_freed_memory_instead_of_faulting_it_back(served, mnist):
    """A wide number needs more memory per request than a digit; after digits, a heap trimmed to their size was
    faulted back in on every number read (hundreds of pages each)."""
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)  # one keep-alive: one worker, one heap

    def post(path: str, body: bytes, times: int) -> None:
        for _ in range(times):
            connection.request("POST", path, body=body, headers={"Content-Type": "image/png"})
            response = connection.getresponse()
            assert response.status == 200, response.read()[:200]
            response.read()

    post("/v1/predict", rgba_png(mnist.x_test[0]), 100)  # as `mnist-edge bench` times them: a digit, then a number
    number = number_png(list(mnist.x_test[:10]))  # 1,300 x 280: wider than the Number canvas, as an upload may be
    post("/v1/read", number, 50)
    before = {pid: minor_faults(pid) for pid in served.workers()}
    post("/v1/read", number, 50)
    faults = sum(minor_faults(pid) - count for pid, count in before.items())
    connection.close()
    assert faults / 50 < 100, f"{faults / 50:.0f} page faults per number read"


def test_a_worker_killed_under_load_is_replaced_and_only_requests_in_flight_fail(served):
    victim = min(served.workers())
    tally = Tally()
    started = time.monotonic()
    threads = load(served.url, seconds=SOAK_SECONDS, tally=tally)
    time.sleep(SOAK_SECONDS / 2)
    answered = len(tally.latencies)
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join()
    tally.report("SIGKILL under load", time.monotonic() - started)
    print(f"cut off at the kill: {len(tally.broken)}: {sorted(tally.broken)}")
    served.wait_for(r"worker \d+ ready \(replacing one that died\)")
    workers = served.workers()
    assert victim not in workers and len(workers) == 2
    assert answered and len(tally.latencies) > answered  # the service went on after the kill
    assert not tally.failures, tally.failures[:5]
    # A connection has one request in flight at most (sent, perhaps queued in the dead worker) when the worker dies:
    # each may lose that one, and none loses a second after reconnecting.
    connections = [cut.split()[0] for cut in tally.broken]
    assert len(connections) == len(set(connections)) <= CONNECTIONS, tally.broken
