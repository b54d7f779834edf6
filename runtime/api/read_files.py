"""`mnist-edge read FILE...`: each file's number through POST /v1/read, in this process or at a running server's URL."""

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


def in_process(models_dir: Path, model: str | None) -> Callable[[bytes], dict]:
    """A reader that runs the route on the models in `models_dir` (only `model`, or the default, is loaded)."""
    from mnist_edge.runtime.api.app import create_app
    from mnist_edge.runtime.config import ServeConfig
    from mnist_edge.runtime.manifest import read_manifest

    name = model or read_manifest(models_dir).get("default")
    client = create_app(ServeConfig(models_dir=models_dir, models=[name] if name else None)).test_client()

    def read(data: bytes) -> dict:
        response = client.post("/v1/read", data=data, content_type="application/octet-stream")
        if response.status_code != 200:
            raise ReadFailed(response.json["error"]["message"])
        return response.json

    return read


def at_url(url: str, model: str | None, token: str | None) -> Callable[[bytes], dict]:
    """A reader that POSTs each file to `url`/v1/read."""
    base = url.rstrip("/")
    target = f"{base}/v1/read" + (f"?{urllib.parse.urlencode({'backend': model})}" if model else "")
    headers = {"Content-Type": "application/octet-stream", **({"Authorization": f"Bearer {token}"} if token else {})}

    def read(data: bytes) -> dict:
        request = urllib.request.Request(target, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # before URLError: it is one
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise ReadFailed(f"the API at {base} answered {exc.code}: {message}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise MnistEdgeError(f"cannot reach the API at {base}: {getattr(exc, 'reason', exc)}") from exc

    return read


def read_files(paths: list[Path], read: Callable[[bytes], dict], *, out, err) -> int:
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
            body = read(data)
        except ReadFailed as exc:
            print(f"mnist-edge: error: {path}: {exc.message}", file=err)
            status = 1
            continue
        print(f"{body['number'] or NOTHING}  {path}", file=out)
    return status
