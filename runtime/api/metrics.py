"""Prometheus metrics (prometheus_client), served at GET /metrics; summed over every worker in multi-process mode.

Multi-process mode is prometheus_client's: it is on when PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is
first imported (`mnist-edge serve --workers N` does that), and each worker then writes its values to files there.
"""

from __future__ import annotations

import prometheus_client
from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
# Seconds: a single-image request is ~1-10 ms on a laptop and tens of ms on a Pi; a full batch reaches seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Multi-process mode has no *_created series; leaving them out in one process too keeps the scrape the same either way.
prometheus_client.disable_created_metrics()


def multiprocess_mode() -> bool:
    """Whether prometheus_client writes every metric to PROMETHEUS_MULTIPROC_DIR (decided when it was imported)."""
    return getattr(values.ValueClass, "_multiprocess", False)


def keep_metrics_in_process() -> None:
    """Metrics made from now on live in this process's memory, not in a PROMETHEUS_MULTIPROC_DIR that cannot take them."""
    values.ValueClass = values.MutexValue


class _Snapshot:
    """One scrape: the request metrics (this app's, or every worker's from the files) plus this process's models."""

    def __init__(self, source, models: dict[str, bool]) -> None:
        self.source = source
        self.models = models

    def collect(self):
        """Every metric family, the way generate_latest wants them."""
        yield from self.source.collect()
        # Computed per scrape from the answering worker's registry: every worker loads the same folder.
        loaded = GaugeMetricFamily("mnist_edge_model_loaded", "1 when the model is serving, 0 when it failed to load.",
                                   labels=["model"])
        for name, ok in sorted(self.models.items()):
            loaded.add_metric([name], int(ok))
        yield loaded


class Metrics:
    """The service's counters, histograms and gauges, in a registry of their own so many apps can share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mnist_edge_requests", "HTTP requests answered.", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.errors = Counter("mnist_edge_errors", "Error responses by stable error code.", ["code"],
                              registry=self.registry)
        self.request_seconds = Histogram("mnist_edge_request_duration_seconds",
                                         "Time to answer a request, per endpoint.", ["endpoint"], buckets=BUCKETS,
                                         registry=self.registry)
        self.inference_seconds = Histogram("mnist_edge_inference_duration_seconds",
                                           "Time in a backend's predict, per model.", ["backend"], buckets=BUCKETS,
                                           registry=self.registry)
        # livesum: the workers' own counts added up, and a dead worker's (mark_process_dead) dropped.
        self.in_flight = Gauge("mnist_edge_requests_in_flight", "Requests being answered now.",
                               multiprocess_mode="livesum", registry=self.registry)
        # Each label set's child, looked up once: `labels()` takes a lock and checks its arguments on every call.
        self._answered: dict[tuple[str, str, int], tuple] = {}
        self._inferred: dict[str, Histogram] = {}
        self.muted = False  # set while a worker warms up: its own requests are not the service's

    def started(self) -> None:
        """A request came in."""
        if not self.muted:
            self.in_flight.inc()

    def finished(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """A request was answered."""
        if self.muted:
            return
        self.in_flight.dec()
        children = self._answered.get((endpoint, method, status))
        if children is None:
            children = (self.requests.labels(endpoint, method, str(status)), self.request_seconds.labels(endpoint))
            self._answered[endpoint, method, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def error(self, code: str) -> None:
        """An error response with this stable code."""
        if not self.muted:
            self.errors.labels(code).inc()

    def inference(self, backend: str, seconds: float) -> None:
        """One predict call on a backend (a whole batch counts once)."""
        if self.muted:
            return
        child = self._inferred.get(backend)
        if child is None:
            child = self._inferred[backend] = self.inference_seconds.labels(backend)
        child.observe(seconds)

    def render(self, models: dict[str, bool]) -> bytes:
        """The text exposition format, version 0.0.4: every worker's requests in multi-process mode."""
        if multiprocess_mode():
            source = CollectorRegistry()
            MultiProcessCollector(source)  # reads every worker's files, live or dead
        else:
            source = self.registry
        return prometheus_client.generate_latest(_Snapshot(source, models))


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus scrape endpoint."""
    from mnist_edge.runtime.api.state import state  # state.py imports this module for Metrics

    shared = state()
    models = {name: slot.loaded for name, slot in shared.registry.slots.items()}
    return Response(shared.metrics.render(models), content_type=CONTENT_TYPE)
