"""Slow clients against a real `serve --workers 2`: they hold no worker thread, and the read timeout cuts them off."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from api_fixtures import canvas_png
from test_workers import two_workers

from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.api.server import bind, create_waitress
from mnist_edge.runtime.api.reading_worker import HEAD_LIMIT, request_complete

READ_TIMEOUT = 1.5  # the strict server's, short so that a cut-off comes within the test's seconds
SLOW_CLIENTS = 8  # twice the threads of 2 workers x 2 threads: enough to block every one of them
GENEROUS = 30  # seconds: a guard against a hung test, not a timing assertion
LIMIT = ServeConfig().max_body_bytes


@pytest.fixture(scope="module")
def patient(shipped_models, tmp_path_factory):
    """Two workers with the default read timeout (30 s), far longer than these tests."""
    yield from two_workers(tmp_path_factory.mktemp("patient"), shipped_models)


@pytest.fixture(scope="module")
def strict(shipped_models, tmp_path_factory):
    """Two workers with a read timeout of READ_TIMEOUT seconds, set by the environment variable."""
    yield from two_workers(tmp_path_factory.mktemp("strict"), shipped_models,
                           {"MNIST_EDGE_READ_TIMEOUT": str(READ_TIMEOUT)})


@pytest.fixture(scope="module")
def digit(known_digits) -> tuple[bytes, int]:
    """A canvas PNG of the first MNIST test digit, and its label."""
    pixels, labels = known_digits
    return canvas_png(pixels[0]), int(labels[0])


def _address(served) -> tuple[str, int]:
    parts = urlsplit(served.url)
    return parts.hostname, parts.port


def _post_head(path: str, length: int, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: image/png", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(reader) -> tuple[int, dict[str, str], bytes]:
    """The next final response on a connection's one buffered reader (responses to pipelined requests come together)."""
    status = 100
    while 100 <= status < 200:  # skip interim answers (100 Continue)
        status = int(reader.readline().split()[1])
        headers = {}
        while (line := reader.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", 0)))


def _ready(served) -> None:
    connection = http.client.HTTPConnection(*_address(served), timeout=GENEROUS)
    connection.request("GET", "/readyz")
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())["ready"] is True
    connection.close()


class Trickler(threading.Thread):
    """A client sending one request a byte at a time, a few bytes a second, until told to stop or cut off."""

    def __init__(self, address: tuple[str, int], request: bytes, *, sent_at_once: int = 0) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(address, timeout=GENEROUS)
        self.request, self.sent_at_once = request, sent_at_once
        self.stop = threading.Event()
        self.cut_off = threading.Event()

    def run(self) -> None:
        try:
            self.sock.sendall(self.request[:self.sent_at_once])
            for byte in self.request[self.sent_at_once:]:
                if self.stop.wait(0.2):
                    return
                self.sock.send(bytes([byte]))
        except OSError:
            self.cut_off.set()

    def close(self) -> None:
        """Stop sending and hang up."""
        self.stop.set()
        self.join(GENEROUS)
        self.sock.close()


def test_request_complete_knows_where_a_request_ends():
    head = _post_head("/v1/predict", 4)
    assert not request_complete(b"", max_body=LIMIT)
    assert not request_complete(head[:-2], max_body=LIMIT)
    assert request_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", max_body=LIMIT)
    assert not request_complete(head + b"abc", max_body=LIMIT)
    assert request_complete(head + b"abcd", max_body=LIMIT)
    assert request_complete(_post_head("/", LIMIT + 1), max_body=LIMIT)  # Flask answers 413 without the body
    assert request_complete(_post_head("/", 0).replace(b": 0", b": lots"), max_body=LIMIT)  # the parser's 400
    assert not request_complete(b"GET / HTTP/1.1\r\nX: " + b"a" * (HEAD_LIMIT - 100), max_body=LIMIT)
    assert request_complete(b"GET / HTTP/1.1\r\nX: " + b"a" * HEAD_LIMIT, max_body=LIMIT)  # the parser's 431
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not request_complete(chunked + b"4\r\nabcd\r\n", max_body=LIMIT)
    assert not request_complete(chunked + b"4\r\n\r\n\r\n\r\n", max_body=LIMIT)  # chunk data that looks like an end
    assert request_complete(chunked + b"4\r\nabcd\r\n0\r\n\r\n", max_body=LIMIT)
    assert request_complete(chunked + b"2;ext=1\r\nab\r\n0\r\nTrailer: 1\r\n\r\n", max_body=LIMIT)
    assert request_complete(chunked + b"zz\r\nabc", max_body=LIMIT)  # a bad chunk size: the parser's 400


def test_a_normal_client_is_answered_while_slow_clients_hold_more_connections_than_threads(patient, digit):
    image, label = digit
    address = _address(patient)
    slow = [Trickler(address, b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 500 + b"\r\n\r\n")
            for _ in range(SLOW_CLIENTS // 2)]
    slow += [Trickler(address, _post_head("/v1/predict", len(image)) + image, sent_at_once=len(image) // 2)
             for _ in range(SLOW_CLIENTS // 2)]
    for client in slow:
        client.start()
    try:
        time.sleep(0.5)  # every slow client has its connection and has started sending
        for _ in range(4):  # fresh connections, so that both workers take some
            connection = http.client.HTTPConnection(*address, timeout=GENEROUS)
            connection.request("POST", "/v1/predict", body=image, headers={"Content-Type": "image/png"})
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["digit"] == label
            connection.close()
        assert not any(client.cut_off.is_set() or not client.is_alive() for client in slow)  # still connected
    finally:
        for client in slow:
            client.close()


def test_a_request_that_arrives_in_pieces_keep_alive_pipelined_or_chunked_is_answered(patient, digit):
    image, label = digit
    request = _post_head("/v1/predict", len(image)) + image
    with socket.create_connection(_address(patient), timeout=GENEROUS) as sock, sock.makefile("rb") as reader:
        for at in range(0, len(request), 700):
            sock.sendall(request[at:at + 700])
            time.sleep(0.05)
        sock.sendall(request + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # two more on the same connection
        for _ in range(2):
            status, _, body = _response(reader)
            assert status == 200 and json.loads(body)["digit"] == label
        assert _response(reader)[0] == 200
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked = head + f"{len(image):x}\r\n".encode() + image + b"\r\n0\r\n\r\n"
        sock.sendall(chunked[:-3])
        time.sleep(0.05)
        sock.sendall(chunked[-3:])
        status, _, body = _response(reader)
        assert status == 200 and json.loads(body)["digit"] == label


def test_a_client_expecting_100_continue_is_told_to_go_on(patient, digit):
    image, label = digit
    with socket.create_connection(_address(patient), timeout=GENEROUS) as sock, sock.makefile("rb") as reader:
        sock.sendall(_post_head("/v1/predict", len(image), "Expect: 100-continue"))
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
        sock.sendall(image)
        status, _, body = _response(reader)  # past gunicorn's own 100 Continue, which follows once it reads the head
        assert status == 200 and json.loads(body)["digit"] == label


def test_a_client_that_stops_mid_body_gets_408_after_the_read_timeout(strict, digit):
    image, _ = digit
    with socket.create_connection(_address(strict), timeout=GENEROUS) as sock, sock.makefile("rb") as reader:
        sock.sendall(_post_head("/v1/predict", len(image)) + image[:100])
        status, headers, body = _response(reader)
        assert status == 408 and headers["content-type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["code"] == "request_timeout" and f"{READ_TIMEOUT:g} s" in error["message"]
        assert reader.read() == b""  # and hung up
    assert "answered 408" in strict.text()
    _ready(strict)


def test_a_client_trickling_its_head_is_cut_off_and_the_server_stays_ready(strict):
    client = Trickler(_address(strict), b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000 + b"\r\n\r\n")
    client.start()
    try:
        answer = b""
        while chunk := client.sock.recv(4096):  # until the server hangs up
            answer += chunk
        # 408 JSON, or nothing where the kernel reset the connection on the bytes the client kept sending
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    except ConnectionResetError:
        pass
    finally:
        client.close()
    _ready(strict)


def test_waitress_closes_silent_connections_after_the_read_timeout_and_keeps_bodies_in_memory():
    from flask import Flask

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    server = create_waitress(app, bind("127.0.0.1", 0), threads=1, read_timeout=7.0)
    try:
        assert server.adj.channel_timeout == 7.0 and server.adj.cleanup_interval == 7.0
        assert server.adj.inbuf_overflow >= server.adj.max_request_body_size > LIMIT  # no temporary file on disk
    finally:
        server.close()
