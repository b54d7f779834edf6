"""The Flask app factory: models, blueprints, the bearer-token check, metrics hooks and the one error handler."""

from __future__ import annotations

import hmac
import logging
import re
import time

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from mnist_edge import __version__
from mnist_edge.runtime.api import api_feedback, api_read, api_v1, api_v2, docs, metrics, openapi
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.errors import (
    ConfigError, HttpError, InternalError, MnistEdgeError, PayloadTooLargeError, UnauthorizedError, UnknownNameError,
)
from mnist_edge.runtime.feedback import FeedbackStore
from mnist_edge.runtime.api.jsonio import OrjsonProvider
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.api.metrics import Metrics
from mnist_edge.runtime.registry import ModelRegistry
from mnist_edge.runtime.api.state import KEY, AppState, state

log = logging.getLogger(__name__)

# Probes answer without the token: an orchestrator's liveness/readiness check carries no credentials.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})


def create_app(config: ServeConfig | None = None, *, registry: ModelRegistry | None = None) -> Flask:
    """Build the API on the configured models (loaded, hash-checked and warmed up here unless `registry` is given)."""
    config = config or ServeConfig()
    if registry is None:
        registry = ModelRegistry.from_manifest(config.models_dir, names=config.models, default=config.default_model,
                                               providers=config.providers, threads=config.onnx_threads)
    if config.default_model and config.default_model not in registry.slots:
        if config.default_model not in read_manifest(config.models_dir).get("artifacts", {}):
            raise UnknownNameError("default model", config.default_model, list(registry.slots))
        chosen = ",".join(registry.slots)
        raise ConfigError(f"the default model {config.default_model} is not loaded: --model names only {chosen}; "
                          f"add it (--model {chosen},{config.default_model}) or pick one of {chosen}",
                          setting="default_model")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes  # Werkzeug answers 413 before reading further
    app.json = OrjsonProvider(app)  # insertion order kept: digit, confidence, probabilities... read better so
    feedback = FeedbackStore(config.feedback_db, max_bytes=config.feedback_max_bytes) if config.feedback else None
    app.extensions[KEY] = AppState(config, registry, Metrics(), feedback)
    app.before_request(_start)
    app.after_request(_finish)
    app.register_error_handler(Exception, handle_error)
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/readyz", view_func=readyz)
    for blueprint in (api_v1.bp, api_read.bp, api_feedback.bp, api_v2.bp, docs.bp, metrics.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app


def _start() -> None:
    # One hook for the clock, the in-flight gauge and the token: each hook is a call Flask makes on every request.
    g.started = time.perf_counter()
    shared = state()
    shared.metrics.started()
    if shared.config.token:
        _check_token(shared.config.token)


def _finish(response: Response) -> Response:
    # Browsers must take a JSON error as JSON, never sniff it into HTML or script (error messages echo user input).
    response.headers["X-Content-Type-Options"] = "nosniff"
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"  # raw paths would explode the label set
    state().metrics.finished(endpoint, request.method, response.status_code, time.perf_counter() - g.started)
    return response


def _check_token(token: str) -> None:
    if request.path in OPEN_PATHS:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    error = UnauthorizedError("missing or wrong bearer token: send `Authorization: Bearer <token>`")
    error.headers = {"WWW-Authenticate": 'Bearer realm="mnist-edge"' + (', error="invalid_token"' if given else "")}
    raise error


def _from_http(exc: HTTPException) -> MnistEdgeError:
    """Werkzeug's protocol errors as ours, with messages that say what to do."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return PayloadTooLargeError(f"the request body is over the {limit:,}-byte limit", limit=limit)
    if isinstance(exc, NotFound):
        return HttpError(404, "not_found", f"no route {request.method} {request.path}; GET /openapi.json lists them")
    code = re.sub(r"\W+", "_", (exc.name or "error").lower()).strip("_")
    error = HttpError(exc.code or 500, code, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        allowed = ", ".join(sorted(exc.valid_methods))
        error.message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
        error.headers = {"Allow": allowed}
    return error


def handle_error(exc: Exception) -> Response | HTTPException:
    """The one error handler: v1 and the rest as {"error": {code, message, details}}, /v2 as {"error": message}."""
    if isinstance(exc, HTTPException) and (exc.code or 500) < 400:
        return exc  # routing redirects (a missing trailing slash) are answers, not errors
    if isinstance(exc, HTTPException):
        error = _from_http(exc)
    elif isinstance(exc, MnistEdgeError):
        error = exc
    else:
        log.exception("unexpected error on %s %s", request.method, request.path)
        error = InternalError("internal server error; the server log has the details")
    state().metrics.error(error.code)
    if request.path == "/v2" or request.path.startswith("/v2/"):
        body = {"error": error.message}  # the Open Inference Protocol's error object
    else:
        body = {"error": error.to_dict()}
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(getattr(error, "headers", None) or {})
    return response


def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok", "version": __version__}


def readyz() -> tuple[dict, int]:
    """Readiness: 200 once the default model serves, 503 before or without it; lists every model."""
    registry = state().registry
    default = registry.slots.get(registry.default) if registry.default else None
    ready = bool(default and default.loaded)
    models = [{"name": n, "loaded": s.loaded, "error": s.error} for n, s in registry.slots.items()]
    return {"ready": ready, "default": registry.default, "models": models}, 200 if ready else 503
