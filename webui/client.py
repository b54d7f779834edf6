"""The API's one HTTP client (the canvas, `drawn-eval`, the aarch64 check): standard library only, so a serve-only
install can use it, and every failure is one friendly line (ApiError)."""

from __future__ import annotations

import base64
import http.client
import json as jsonlib
import os
import select
import threading
import urllib.error
import urllib.parse
import urllib.request
import weakref
from dataclasses import dataclass, field

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VAR, TOKEN_VAR, TIMEOUT_VAR = "MNIST_EDGE_API_URL", "MNIST_EDGE_TOKEN", "MNIST_EDGE_API_TIMEOUT"
# Seconds to connect and to wait for an answer: a local API answers a drawing in milliseconds, so a few seconds
# means it is stuck or swamped (a Pi on a slow network may want more: MNIST_EDGE_API_TIMEOUT).
TIMEOUT = 5.0
# A command that sends many images (drawn-eval, read --url, numbers-eval) waits longer: a busy Pi is slow, not wrong.
PATIENT = (5.0, 30.0)  # seconds to connect, to answer
KEPT = 4  # idle keep-alive connections kept for the next calls: one per browser tab drawing at once
# How a kept connection fails when the server closed it just as a request was sent on it (http.client's
# RemoteDisconnected is a ConnectionResetError): a server closes an idle connection after its keep-alive (gunicorn: 2 s).
CLOSED_WHILE_IDLE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _timeout() -> tuple[float, float]:
    try:
        seconds = float(os.environ.get(TIMEOUT_VAR, TIMEOUT))
    except ValueError:
        seconds = TIMEOUT
    seconds = seconds if seconds > 0 else TIMEOUT
    return min(2.0, seconds), seconds


class ApiError(Exception):
    """A failed API call, with a one-line message that says what to do; `status` is the HTTP status when one came."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when a kept-alive connection was closed by the server while idle: its socket reads as ready (EOF)."""
    return connection.sock is None or bool(select.select([connection.sock], [], [], 0)[0])


def answers_ok(url: str, timeout: float) -> bool:
    """True when a GET of `url` answers 200 within `timeout` seconds: a server's health probe, while it starts."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _close_all(connections: list[http.client.HTTPConnection]) -> None:
    for connection in connections:
        connection.close()
    connections.clear()


@dataclass
class ApiClient:
    """The API at `url` (bearer `token` when set), with keep-alive connections that concurrent calls share safely."""

    url: str = field(default_factory=lambda: os.environ.get(URL_VAR) or DEFAULT_URL)
    token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_VAR) or None)
    timeout: tuple[float, float] = field(default_factory=_timeout)  # (connect, read)
    # Streamlit runs each browser session in its own thread, and one client serves them all: a connection is taken
    # by one call at a time and given back after it.
    _idle: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.strip().rstrip("/")
        weakref.finalize(self, _close_all, self._idle)

    def close(self) -> None:
        """Close the kept-alive connections (a later call opens a new one)."""
        with self._lock:
            _close_all(self._idle)

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < KEPT:
                self._idle.append(connection)
                return
        connection.close()

    def _connection(self, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection that still looks open (unless `fresh`), else a new one; and whether it was kept."""
        with self._lock:
            while self._idle and not fresh:
                kept = self._idle.pop()
                if not _dropped(kept):
                    return kept, True
                kept.close()
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(f"Cannot reach the API at {self.url}: check the address (e.g. http://127.0.0.1:8000).",
                           code="unreachable")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        try:
            connection = kind(parts.hostname, parts.port, timeout=self.timeout[0])
            connection.connect()
        except (OSError, ValueError):
            raise ApiError(f"Cannot reach the API at {self.url}: start it with `mnist-edge serve`.",
                           code="unreachable") from None
        connection.sock.settimeout(self.timeout[1])
        return connection, False

    def _call(self, method: str, path: str, *, params: dict | None = None, data: bytes | None = None,
              json: object = None, headers: dict | None = None) -> dict:
        headers = dict(headers or {})
        if json is not None:
            data, headers["Content-Type"] = jsonlib.dumps(json).encode(), "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        target = urllib.parse.urlsplit(self.url).path + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        connection, kept = self._connection()
        while True:
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                break
            except TimeoutError:
                connection.close()
                raise ApiError(f"The API at {self.url} did not answer within {self.timeout[1]:.0f} s: "
                               "it may be overloaded; try again in a moment.", code="timeout") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if kept and isinstance(exc, CLOSED_WHILE_IDLE):
                    # The server closed the idle connection (its keep-alive ran out) as this request went out, so it
                    # never read it: sent once more, on a new connection.
                    connection, kept = self._connection(fresh=True)
                    continue
                raise ApiError(f"Cannot reach the API at {self.url}: start it with `mnist-edge serve`.",
                               code="unreachable") from None
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        try:
            body = jsonlib.loads(raw)
        except ValueError:
            body = None
        if response.status < 400 and isinstance(body, dict):
            return body
        if response.status < 400:
            raise ApiError(f"The server at {self.url} is not an mnist-edge API (its answer is not JSON).",
                           status=response.status, code="not_api")
        raise _answer_error(response.status, body, self.url)

    def ready(self) -> dict:
        """GET /readyz: {"ready": bool, "default": name, ...}; a 503 (not ready yet) is an answer, not an error."""
        try:
            return self._call("GET", "/readyz")
        except ApiError as exc:
            if exc.status == 503:
                return {"ready": False}
            raise

    def models(self) -> dict:
        """GET /v1/models: the default and every configured model."""
        return self._call("GET", "/v1/models")

    def predict(self, image: bytes, *, content_type: str = "image/png", model: str | None = None,
                return_image: bool = True) -> dict:
        """POST one image to /v1/predict; the answer carries the 28 x 28 image the model saw unless not asked."""
        params = {"return_image": str(return_image).lower(), **({"backend": model} if model else {})}
        return self._call("POST", "/v1/predict", params=params, data=image, headers={"Content-Type": content_type})

    def read(self, image: bytes, *, content_type: str = "image/png", model: str | None = None) -> dict:
        """POST one image of a handwritten number to /v1/read: the number, and each item's digit and box."""
        params = {"backend": model} if model else {}
        return self._call("POST", "/v1/read", params=params, data=image, headers={"Content-Type": content_type})

    def compare(self, image: bytes, *, content_type: str = "image/png") -> dict:
        """POST one image to /v1/compare: every loaded model's answer."""
        return self._call("POST", "/v1/compare", data=image, headers={"Content-Type": content_type})

    def feedback(self, image: bytes, label: int | None, answer: dict) -> dict:
        """POST /v1/feedback: store the drawing (PNG) as `label` (None: not a digit); {"id", "count"}."""
        body = {"image": base64.b64encode(image).decode("ascii"), "label": label, "answer": answer}
        return self._call("POST", "/v1/feedback", json=body)

    def feedback_stats(self) -> dict:
        """GET /v1/feedback: {"count", "by_label", "corrected", "db_bytes"}."""
        return self._call("GET", "/v1/feedback")


# Errors whose message is the whole story: another model or a restart would not help.
STORAGE_CODES = ("storage_full", "storage_unavailable")


def _answer_error(status: int, body: object, url: str) -> ApiError:
    """The API's own message for a 4xx/5xx answer, with what to do about the common ones."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    code = error.get("code") if isinstance(error, dict) else None
    if status == 401:
        return ApiError("The API wants a token: set MNIST_EDGE_TOKEN (or the sidebar's token) to the server's.",
                        status=status, code=code)
    if message is None:
        return ApiError(f"The server at {url} answered {status} without an mnist-edge error: is it the API?",
                        status=status, code=code)
    advice = " Try another model, or restart the API." if status >= 500 and code not in STORAGE_CODES else ""
    return ApiError(f"The API answered {status}: {message}.{advice}".replace("..", "."), status=status, code=code)
