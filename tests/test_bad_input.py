"""A real server on loopback: the bad-input corpus (status and error shape, nothing 5xx) and MNIST digits it must read."""

from __future__ import annotations

import http.client
import json
import re
import socket

import numpy as np
import pytest
from api_fixtures import canvas_png
from bad_requests import Bad, corpus

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig

TOKEN = "corpus-token"
ROWS = corpus()


@pytest.fixture(scope="module")
def servers(app):
    """The shipped-models app, and the same models behind a token, each under waitress on a free port."""
    registry = app.extensions["mnist_edge"].registry
    guarded = create_app(ServeConfig(models_dir=app.extensions["mnist_edge"].config.models_dir, token=TOKEN),
                         registry=registry)
    running = {"open": start_background(app), "token": start_background(guarded)}
    yield running
    for server in running.values():
        server.close()


def _address(server) -> tuple[str, int]:
    return server.server.effective_host, server.server.effective_port


def _send(server, row: Bad) -> tuple[int, dict[str, str], bytes]:
    host, port = _address(server)
    if row.raw is not None:
        return _send_raw(host, port, row.raw)
    headers = dict(row.headers)
    if row.token:
        headers["Authorization"] = row.token
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(row.method, row.path, body=row.body or None, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _send_raw(host: str, port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Write the bytes, close our side, and parse the first response the server gives (status 0: none, it hung up)."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except http.client.RemoteDisconnected:
            return 0, {}, b""
        try:
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            response.close()


def test_the_corpus_is_large_and_covers_every_route():
    assert len(ROWS) >= 50
    assert len({row.name for row in ROWS}) == len(ROWS)
    paths = {row.path.split("?")[0] for row in ROWS}
    assert {"/v1/predict", "/v1/read", "/v1/compare", "/v1/models", "/v1/feedback", "/v2/models/onnx-int8/infer"} <= paths


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_request_gets_its_status_and_error_shape(servers, row):
    server = servers["token" if row.token is not None else "open"]
    status, headers, body = _send(server, row)
    assert status == row.status, (status, body[:300])
    assert not re.search(r"\d", headers.get("server", "")), headers["server"]  # no version banner
    if row.layer == "wsgi":
        return  # the WSGI server's own plain-text answer: only its status is ours to check here
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)["error"]
    if row.path.startswith("/v2"):
        assert isinstance(error, str) and error
    else:
        assert set(error) <= {"code", "message", "details"} and error["message"]
        assert error["code"] == row.code, error


def test_the_server_is_still_ready_after_the_corpus(servers):
    """Run last in this module: no row may have broken a worker thread, a model or the listener."""
    for server in servers.values():
        connection = http.client.HTTPConnection(*_address(server), timeout=10)
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["ready"] is True
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        connection.close()


# Oracles that share no code with the server: MNIST's own labels. The shipped model reads 99.6 % of the test set, so
# these floors leave room for a few misreads and none for a broken preprocess (one that swaps x and y scores < 60 %).
V2_FLOOR = 0.97
CANVAS_FLOOR = 0.94


def _post(server, path: str, body: bytes, content_type: str) -> dict:
    connection = http.client.HTTPConnection(*_address(server), timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def test_v2_reads_the_first_mnist_test_digits_with_their_labels(servers, app, known_digits):
    pixels, labels = known_digits
    name = app.extensions["mnist_edge"].registry.default
    request = {"inputs": [{"name": "image", "shape": [64, 28, 28], "datatype": "UINT8", "data": []}]}
    digits = []
    for start in range(0, len(pixels), 64):
        chunk = pixels[start:start + 64]
        request["inputs"][0].update(shape=[len(chunk), 28, 28], data=chunk.ravel().tolist())
        output = _post(servers["open"], f"/v2/models/{name}/infer", json.dumps(request).encode(), "application/json")
        digits += list(np.array(output["outputs"][0]["data"]).reshape(output["outputs"][0]["shape"]).argmax(axis=1))
    assert np.mean(np.array(digits) == labels) >= V2_FLOOR


def test_canvas_drawings_of_mnist_digits_come_back_with_their_labels(servers, known_digits):
    pixels, labels = known_digits
    right = sum(_post(servers["open"], "/v1/predict", canvas_png(digit), "image/png")["digit"] == label
                for digit, label in zip(pixels[:50], labels[:50]))
    assert right / 50 >= CANVAS_FLOOR, f"{right} of 50"
