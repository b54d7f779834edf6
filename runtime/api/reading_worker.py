"""The gunicorn worker class `mnist-edge serve` runs (`reading_worker`), in which a slow client holds no thread.

It is gunicorn's gthread worker, changed to read a request without waiting, between other work, and to hand it to a
thread only once it is all in memory (gthread would block a thread on every slow sender).
A request still not whole at its read timeout is answered 408 and the connection closed.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import time
from collections import deque
from contextlib import suppress

log = logging.getLogger("mnist_edge.serve")  # the server's one log, as runtime/api/workers.py

# A request head longer than this is handed to gunicorn's parser as it is: its own limits (a 4094-byte request line,
# 100 header fields of 8190 bytes) are all below it, so it answers 414 or 431 without waiting for more.
HEAD_LIMIT = 1024 * 1024
READ_SIZE = 256 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it cannot parse (before Flask sees it), in the API's v1 error shape, not HTML."""
    from gunicorn.util import write_nonblock

    code = reason.lower().replace(" ", "_")  # gunicorn's reason phrase: "bad_request", "uri_too_long", ...
    body = json.dumps({"error": {"code": code, "message": mesg or reason}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    write_nonblock(sock, head.encode("latin-1") + body)


def _head_fields(head: bytes) -> dict[bytes, bytes]:
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    return fields


def _chunks_complete(data: bytes, at: int) -> bool:
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return False
        size = data[at:end].split(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size):
            return True  # no chunk size: gunicorn's parser answers 400 without reading on
        if int(size, 16) == 0:
            return data.find(b"\r\n\r\n", end) >= 0  # the trailer section ends with an empty line
        at = end + 2 + int(size, 16) + 2


def request_complete(data: bytes, *, max_body: int) -> bool:
    """Whether `data` starts with a whole HTTP/1.1 request, or with enough of one for the server to refuse it."""
    if len(data) > HEAD_LIMIT + max_body:
        return True  # longer than any request we take: the parser or Flask refuses it (400, 413, 431)
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > HEAD_LIMIT
    fields = _head_fields(bytes(data[:end]))
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        return _chunks_complete(data, end + 4)
    length = fields.get(b"content-length", b"0")
    # Not a number: the parser answers 400. Over the limit: Flask answers 413 without reading the body.
    return not length.isdigit() or int(length) > max_body or len(data) - end - 4 >= int(length)


def _read_ahead(conn, *, read_timeout: float, max_body: int) -> str:
    """Take whatever the client has sent, without waiting: "ready", "wait" (for more), "late" or "gone"."""
    if not hasattr(conn, "early"):
        conn.early, conn.deadline, conn.continued = bytearray(), None, False
    if conn.parser is not None:
        conn.early += conn.parser.unreader.take_buffered()  # a pipelined request, read along with the one before
    while not request_complete(conn.early, max_body=max_body):
        try:
            data = conn.sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        except OSError:  # reset by the client
            return "gone"
        if not data:
            return "gone"  # closed before its request was whole: there is nothing to answer
        conn.early += data
    else:
        return "ready"
    now = time.monotonic()
    if conn.early and conn.deadline is None:
        conn.deadline = now + read_timeout
    if conn.deadline is not None and now > conn.deadline:
        return "late"
    head, blank, _ = bytes(conn.early).partition(b"\r\n\r\n")
    if blank and not conn.continued and _head_fields(head).get(b"expect") == b"100-continue":
        # The client holds its body back until told to go on; gunicorn says so again later, which clients ignore.
        conn.continued = True
        with suppress(OSError):
            conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n", socket.MSG_DONTWAIT)
    return "wait"


def _refuse_late(conn, read_timeout: float) -> None:
    """408 to a client whose request is still not whole at its deadline, and no more reading from it."""
    log.warning("read timeout: %s sent %d bytes of a request in %g s; answered 408", conn.client[0], len(conn.early),
                read_timeout)
    conn.early.clear()
    with suppress(OSError):
        json_error(conn.sock, 408, "Request Timeout",
                    f"the request did not arrive in full within {read_timeout:g} s of its first byte")
        conn.sock.shutdown(socket.SHUT_RDWR)


def reading_worker(*, read_timeout: float, max_body: int) -> type:
    """gunicorn's gthread worker, but a thread takes a connection only once its request is all in memory."""
    from gunicorn.workers.gthread import _DEFER, ThreadWorker

    class ReadAheadWorker(ThreadWorker):
        def handle(self, conn):
            """Answer a whole request; park a partial one in the poller (no thread waits on a slow client)."""
            state = _read_ahead(conn, read_timeout=read_timeout, max_body=max_body)
            while state == "wait" and not self.alive and conn.early:
                # Stopping, gthread parks nothing: a thread waits for the rest of a request begun (GRACEFUL_SECONDS).
                select.select([conn.sock], [], [], max(0.0, conn.deadline - time.monotonic()))
                state = _read_ahead(conn, read_timeout=read_timeout, max_body=max_body)
            if state == "wait":
                # gunicorn's own path back to the poller for a connection with nothing to read yet
                return _DEFER if self.alive else False
            if state == "late":
                _refuse_late(conn, read_timeout)
            if state != "ready":
                return False
            conn.init()
            conn.parser.unreader.unread(bytes(conn.early))
            conn.early, conn.deadline, conn.continued = bytearray(), None, False
            return super().handle(conn)

        def finish_request(self, conn, fs) -> None:
            """As gthread, then a parked partial request waits until its deadline, not a keep-alive timeout."""
            super().finish_request(conn, fs)
            if getattr(conn, "deadline", None) is not None and conn in self.pending_conns:
                conn.timeout = conn.deadline
                # murder_pending stops at the first connection not yet due: keep them in deadline order.
                self.pending_conns = deque(sorted(self.pending_conns, key=lambda pending: pending.timeout))

        def murder_pending(self) -> None:
            """408 to the parked requests that are due, before gthread closes them."""
            now = time.monotonic()
            for conn in self.pending_conns:
                if conn.timeout > now:
                    break
                if getattr(conn, "early", None):
                    _refuse_late(conn, read_timeout)
            super().murder_pending()

    return ReadAheadWorker
