"""`mnist-edge read FILE...`: each file's number through POST /v1/read, in this process or at a running server's URL.

The two clients here also carry `mnist-edge numbers-eval`'s requests."""

from __future__ import annotations

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
    """A client that POSTs an image to a route (/v1/read, /v1/predict) of the API at `url`, with the API's one HTTP
    client (webui/client.py: the standard library only)."""
    from mnist_edge.webui.client import PATIENT, ApiClient, ApiError

    client = ApiClient(url=url, token=token, timeout=PATIENT)
    kind = "application/octet-stream"  # the server tells PNG from JPEG by their bytes
    routes = {"/v1/read": lambda data: client.read(data, content_type=kind, model=model),
              "/v1/predict": lambda data: client.predict(data, content_type=kind, model=model, return_image=False)}

    def read(route: str, data: bytes) -> dict:
        try:
            return routes[route](data)
        except ApiError as exc:
            bad_file = exc.status is not None and exc.status < 500  # a bad file, or else a broken or absent service
            raise (ReadFailed if bad_file else MnistEdgeError)(exc.message) from exc

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
