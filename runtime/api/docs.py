"""The API's front door: GET / (links) and GET /docs (Swagger UI on /openapi.json, served from a Python package)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from mnist_edge import __version__
from mnist_edge.runtime.errors import HttpError

bp = Blueprint("docs", __name__)

# Every link answers GET; the POST routes (/v1/predict, /v1/read, /v1/compare, v2 infer) are in the OpenAPI document.
LINKS = {"openapi": "/openapi.json", "docs": "/docs", "health": "/healthz", "ready": "/readyz", "models": "/v1/models",
         "v2": "/v2", "metrics": "/metrics"}
# Swagger UI's built files ship inside the flask-swagger-ui wheel (no CDN: a Pi may be offline); these are all the
# page loads, and nothing else in that folder is served.
# Their types are fixed here: a system's mimetypes table may call JavaScript something else.
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript", "favicon-32x32.png": "image/png"}
VIEWER_PACKAGE = "flask_swagger_ui"
# Relative URLs, so the page also works behind a reverse proxy that mounts the API under a path prefix.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mnist-edge API reference</title>
  <link rel="icon" href="docs/favicon-32x32.png">
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body>
</html>
"""


def viewer_dir() -> Path:
    """The folder of Swagger UI's built files in the installed flask-swagger-ui package."""
    spec = find_spec(VIEWER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise HttpError(503, "docs_unavailable", "the API reference needs the flask-swagger-ui package "
                                                 "(pip install flask-swagger-ui); /openapi.json has the same content")
    return Path(spec.submodule_search_locations[0]) / "dist"


@bp.get("/")
def index() -> dict:
    """Where things are: the OpenAPI document, its rendered reference, health and the main routes."""
    return {"name": "mnist-edge", "version": __version__, "links": LINKS}


@bp.get("/docs")
def docs() -> Response:
    """The API reference page: Swagger UI rendering /openapi.json."""
    viewer_dir()  # a clear 503 now rather than a page whose script is missing
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<asset>")
def docs_asset(asset: str) -> Response:
    """One of Swagger UI's files, from the installed package."""
    if asset not in ASSETS:
        raise HttpError(404, "not_found", f"no docs asset {asset!r}; the page uses {', '.join(ASSETS)}")
    return send_from_directory(viewer_dir(), asset, mimetype=ASSETS[asset], max_age=3600)
