"""Metrics: the exposition a scrape gets, apps that share a process, and prometheus_client's multi-process mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from prometheus_client.parser import text_string_to_metric_families

from mnist_edge.runtime.api.metrics import BUCKETS, Metrics, multiprocess_mode


def families(metrics: Metrics, models: dict[str, bool]) -> dict:
    """name -> {labels tuple: value}, parsed back from the text a scrape gets."""
    parsed = {}
    for family in text_string_to_metric_families(metrics.render(models).decode()):
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return parsed


def test_the_scrape_has_every_name_and_label_the_service_promises():
    metrics = Metrics()
    metrics.started()
    metrics.finished("/v1/predict", "POST", 200, 0.003)
    metrics.started()
    metrics.finished("/v1/predict", "POST", 400, 0.0001)
    metrics.error("bad_image")
    metrics.inference("tflite-int8", 0.0004)
    metrics.started()  # one still in flight
    got = families(metrics, {"tflite-int8": True, "onnx-int8": False})
    assert got["mnist_edge_requests_total"] == {
        (("endpoint", "/v1/predict"), ("method", "POST"), ("status", "200")): 1.0,
        (("endpoint", "/v1/predict"), ("method", "POST"), ("status", "400")): 1.0,
    }
    assert got["mnist_edge_errors_total"] == {(("code", "bad_image"),): 1.0}
    buckets = got["mnist_edge_request_duration_seconds_bucket"]
    assert len(buckets) == len(BUCKETS) + 1  # and +Inf
    assert buckets[(("endpoint", "/v1/predict"), ("le", "0.001"))] == 1.0  # the 0.1 ms one; the 3 ms one is above
    assert buckets[(("endpoint", "/v1/predict"), ("le", "+Inf"))] == 2.0
    assert got["mnist_edge_request_duration_seconds_count"] == {(("endpoint", "/v1/predict"),): 2.0}
    assert got["mnist_edge_inference_duration_seconds_count"] == {(("backend", "tflite-int8"),): 1.0}
    assert got["mnist_edge_requests_in_flight"] == {(): 1.0}
    assert got["mnist_edge_model_loaded"] == {(("model", "onnx-int8"),): 0.0, (("model", "tflite-int8"),): 1.0}
    assert not [name for name in got if name.endswith("_created")]  # the same series in one process as in many


def test_two_apps_in_one_process_keep_their_own_counts():
    first, second = Metrics(), Metrics()
    first.error("too_large")
    assert families(first, {})["mnist_edge_errors_total"] == {(("code", "too_large"),): 1.0}
    assert "mnist_edge_errors_total" not in families(second, {})
    assert not multiprocess_mode()  # the test process never set PROMETHEUS_MULTIPROC_DIR


CHILDREN = textwrap.dedent("""
    import os
    from prometheus_client.multiprocess import mark_process_dead
    from mnist_edge.runtime.api.metrics import Metrics, multiprocess_mode

    assert multiprocess_mode()
    pids = []
    for requests in (3, 4):  # two forked "workers", each with its own app's metrics
        pid = os.fork()
        if pid == 0:
            metrics = Metrics()
            for _ in range(requests):
                metrics.started()
                metrics.finished("/v2/models/{name}/infer", "POST", 200, 0.002)
            metrics.started()  # left in flight: this worker dies with it
            os._exit(0)
        pids.append(pid)
        os.waitpid(pid, 0)
    mark_process_dead(pids[0])
    print(Metrics().render({}).decode())
""")


def test_multiprocess_mode_adds_up_every_process_and_drops_dead_ones_in_flight(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CHILDREN], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = {s.name: s.value for f in text_string_to_metric_families(done.stdout) for s in f.samples if not s.labels}
    requests = [s for f in text_string_to_metric_families(done.stdout) for s in f.samples
                if s.name == "mnist_edge_requests_total"]
    assert [s.value for s in requests] == [7.0]
    assert requests[0].labels == {"endpoint": "/v2/models/{name}/infer", "method": "POST", "status": "200"}
    assert got["mnist_edge_requests_in_flight"] == 1.0  # the second child's, which was not marked dead
