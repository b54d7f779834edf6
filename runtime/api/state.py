"""What the app's views share (config, models, metrics), kept in app.extensions and read back by `state()`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.feedback import FeedbackStore
from mnist_edge.runtime.api.metrics import Metrics
from mnist_edge.runtime.registry import ModelRegistry

KEY = "mnist_edge"


@dataclass
class AppState:
    """The running app's config, model registry, metrics and corrections store."""

    config: ServeConfig
    registry: ModelRegistry
    metrics: Metrics
    feedback: FeedbackStore | None = None  # None: --no-feedback


def state() -> AppState:
    """The current app's shared state (inside a request or app context)."""
    return current_app.extensions[KEY]
