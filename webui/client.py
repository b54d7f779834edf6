"""A small HTTP client for the mnist-edge API whose every failure is one friendly line (ApiError)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VAR, TOKEN_VAR, TIMEOUT_VAR = "MNIST_EDGE_API_URL", "MNIST_EDGE_TOKEN", "MNIST_EDGE_API_TIMEOUT"
# Seconds to connect and to wait for an answer: a local API answers a drawing in milliseconds, so a few seconds
# means it is stuck or swamped (a Pi on a slow network may want more: MNIST_EDGE_API_TIMEOUT).
TIMEOUT = 5.0


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


@dataclass
class ApiClient:
    """The API at `url` (bearer `token` when set), one keep-alive session for every call."""

    url: str = field(default_factory=lambda: os.environ.get(URL_VAR) or DEFAULT_URL)
    token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_VAR) or None)
    timeout: tuple[float, float] = field(default_factory=_timeout)  # (connect, read)
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.strip().rstrip("/")

    def _call(self, method: str, path: str, **kwargs) -> dict:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(method, self.url + path, headers=headers, timeout=self.timeout, **kwargs)
        except requests.exceptions.Timeout:
            raise ApiError(f"The API at {self.url} did not answer within {self.timeout[1]:.0f} s: "
                           "it may be overloaded; try again in a moment.", code="timeout") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
            hint = "start it with `mnist-edge serve`" if isinstance(exc, requests.exceptions.ConnectionError) \
                else "check the address (e.g. http://127.0.0.1:8000)"
            raise ApiError(f"Cannot reach the API at {self.url}: {hint}.", code="unreachable") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and isinstance(body, dict):
            return body
        if response.ok:
            raise ApiError(f"The server at {self.url} is not an mnist-edge API (its answer is not JSON).",
                           status=response.status_code, code="not_api")
        raise _answer_error(response.status_code, body, self.url)

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

    def predict(self, image: bytes, *, content_type: str = "image/png", model: str | None = None) -> dict:
        """POST one image to /v1/predict; the answer carries the 28 x 28 image the model saw."""
        params = {"return_image": "true", **({"backend": model} if model else {})}
        return self._call("POST", "/v1/predict", params=params, data=image, headers={"Content-Type": content_type})

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
