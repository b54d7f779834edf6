"""`mnist-edge read FILE...`: each file's number through POST /v1/read, in this process or at a running server's URL.

The two clients here also carry `mnist-edge numbers-eval`'s requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mnist_edge.runtime.errors import MnistEdgeError

NOTHING = "-"  # printed for a file with no character read as a digit, so every line has two fields


class ReadFailed(MnistEdgeError):
    """One file could not be read: missing, not an image, blank, refused by the server."""


def in_process(models_dir: Path, model: str | None) -> Callable[[str, bytes], dict]:
    """A client that POSTs an image to a route (/v1/read, /v1/predict) of an app in this process, on the models in
    `models_dir` (only `model`, or the default, is loaded)."""
    from mnist_edge.runtime.api.app import create_app
    from mnist_edge.runtime.config import ServeConfig
    from mnist_edge.runtime.manifest import read_manifest

    name = model or read_manifest(models_dir).get("default")
    client = create_app(ServeConfig(models_dir=models_dir, models=[name] if name else None)).test_client()

    def read(route: str, data: bytes) -> dict:
        response = client.post(route, data=data, content_type="application/octet-stream")
        if response.status_code >= 500:  # the service is broken, not the file
            raise MnistEdgeError(response.json["error"]["message"])
        if response.status_code != 200:
            raise ReadFailed(response.json["error"]["message"])
        return response.json

    return read


def at_url(url: str, model: str | None, token: str | None) -> Callable[[str, bytes], dict]:
    """A client that POSTs an image to a route (/v1/read, /v1/predict) of the API at `url`."""
    base = url.rstrip("/")
    query = f"?{urllib.parse.urlencode({'backend': model})}" if model else ""
    headers = {"Content-Type": "application/octet-stream", **({"Authorization": f"Bearer {token}"} if token else {})}

    def read(route: str, data: bytes) -> dict:
        request = urllib.request.Request(base + route + query, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # before URLError: it is one
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            failed = MnistEdgeError if exc.code >= 500 else ReadFailed  # a broken service, or a bad file
            raise failed(f"the API at {base} answered {exc.code}: {message}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise MnistEdgeError(f"cannot reach the API at {base}: {getattr(exc, 'reason', exc)}") from exc

    return read


def read_files(paths: list[Path], read: Callable[[str, bytes], dict], *, out, err) -> int:
    """Print `NUMBER  FILE` per readable file and one error line per bad one; 1 if any was bad, else 0."""
    status = 0
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"mnist-edge: error: {path}: {exc.strerror or exc}", file=err)
            status = 1
            continue
        try:
            body = read("/v1/read", data)
        except ReadFailed as exc:
            print(f"mnist-edge: error: {path}: {exc.message}", file=err)
            status = 1
            continue
        print(f"{body['number'] or NOTHING}  {path}", file=out)
    return status
