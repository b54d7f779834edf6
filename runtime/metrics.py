"""Prometheus metrics written by hand (the edge install has no prometheus_client), served at GET /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict

from flask import Blueprint, Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a single-image request is ~1-10 ms on a laptop and tens of ms on a Pi; a full batch reaches seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Histogram:
    """Cumulative buckets, sum and count for each label set."""

    def __init__(self) -> None:
        self.counts: dict[Labels, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, labels: Labels, seconds: float) -> None:
        """Count one observation (caller holds the lock)."""
        counts = self.counts[labels]
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1  # +Inf, which is also the count
        self.sums[labels] += seconds

    def lines(self, name: str) -> list[str]:
        """Exposition lines for every label set."""
        out = []
        for labels, counts in sorted(self.counts.items()):
            for bound, count in zip((*map(repr, BUCKETS), "+Inf"), counts):
                le = f'le="{bound}"'
                out.append(f"{name}_bucket{_labels(labels, le)} {count}")
            out.append(f"{name}_sum{_labels(labels)} {self.sums[labels]:.6f}")
            out.append(f"{name}_count{_labels(labels)} {counts[-1]}")
        return out


class Metrics:
    """The service's counters, histograms and gauges; every method is safe from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[Labels, int] = defaultdict(int)
        self.errors: dict[Labels, int] = defaultdict(int)
        self.request_seconds = Histogram()
        self.inference_seconds = Histogram()
        self.in_flight = 0

    def started(self) -> None:
        """A request came in."""
        with self._lock:
            self.in_flight += 1

    def finished(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """A request was answered."""
        with self._lock:
            self.in_flight -= 1
            self.requests[(("endpoint", endpoint), ("method", method), ("status", str(status)))] += 1
            self.request_seconds.observe((("endpoint", endpoint),), seconds)

    def error(self, code: str) -> None:
        """An error response with this stable code."""
        with self._lock:
            self.errors[(("code", code),)] += 1

    def inference(self, backend: str, seconds: float) -> None:
        """One predict call on a backend (a whole batch counts once)."""
        with self._lock:
            self.inference_seconds.observe((("backend", backend),), seconds)

    def render(self, models: dict[str, bool]) -> str:
        """The text exposition format, version 0.0.4."""
        with self._lock:
            out = ["# HELP mnist_edge_requests_total HTTP requests answered.", "# TYPE mnist_edge_requests_total counter"]
            out += [f"mnist_edge_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())]
            out += ["# HELP mnist_edge_errors_total Error responses by stable error code.",
                    "# TYPE mnist_edge_errors_total counter"]
            out += [f"mnist_edge_errors_total{_labels(k)} {v}" for k, v in sorted(self.errors.items())]
            out += ["# HELP mnist_edge_request_duration_seconds Time to answer a request, per endpoint.",
                    "# TYPE mnist_edge_request_duration_seconds histogram"]
            out += self.request_seconds.lines("mnist_edge_request_duration_seconds")
            out += ["# HELP mnist_edge_inference_duration_seconds Time in a backend's predict, per model.",
                    "# TYPE mnist_edge_inference_duration_seconds histogram"]
            out += self.inference_seconds.lines("mnist_edge_inference_duration_seconds")
            out += ["# HELP mnist_edge_requests_in_flight Requests being answered now.",
                    "# TYPE mnist_edge_requests_in_flight gauge", f"mnist_edge_requests_in_flight {self.in_flight}"]
        out += ["# HELP mnist_edge_model_loaded 1 when the model is serving, 0 when it failed to load.",
                "# TYPE mnist_edge_model_loaded gauge"]
        out += [f"mnist_edge_model_loaded{_labels((('model', name),))} {int(ok)}" for name, ok in sorted(models.items())]
        return "\n".join(out) + "\n"


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus scrape endpoint."""
    from mnist_edge.runtime.state import state  # state.py imports this module for Metrics

    shared = state()
    models = {name: slot.loaded for name, slot in shared.registry.slots.items()}
    return Response(shared.metrics.render(models), content_type=CONTENT_TYPE)
