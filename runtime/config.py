"""The server's settings: one dataclass of defaults, filled from flags, then MNIST_EDGE_* variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mnist_edge.runtime.errors import ConfigError
from mnist_edge.runtime.feedback import DEFAULT_MAX_BYTES, default_path

ENV_PREFIX = "MNIST_EDGE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_models_dir() -> Path:
    """The shipped models: `mnist_edge/models` next to `mnist_edge/runtime`, in a wheel and in a checkout alike."""
    # Not importlib.resources: an editable install cannot import a data-only package nested in a regular one.
    return Path(__file__).resolve().parent.parent / "models"


@dataclass(kw_only=True)
class ServeConfig:
    """Everything `create_app` and `serve` need; tests build one directly."""

    models_dir: Path = field(default_factory=default_models_dir)
    models: list[str] | None = None  # None: every artifact that needs no TensorFlow (keras only when named)
    default_model: str | None = None  # None: the manifest's default, the one the converter picked for the edge
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX execution providers, best first; CPU is the fallback
    onnx_threads: int = 1  # intra-op threads per ONNX session: concurrent requests use the cores, no pool spins
    workers: int | None = None  # processes, each with its own models (Linux); None: one per core, as one GIL uses one
    threads: int = 2  # per process; more only queue on the GIL (2 workers, 2 cores: 444 /v2 req/s, 4 threads: 334)
    host: str = "127.0.0.1"  # loopback unless told: a device on a shared network should not serve the world by accident
    port: int = 8000
    token: str | None = None  # when set, every route but the health probes wants `Authorization: Bearer <token>`
    max_body_bytes: int = 5 * 1024 * 1024  # a 280 x 280 canvas PNG is ~5 KB; a phone photo fits, a video doesn't
    max_batch: int = 64  # images per request: bounds one request's latency and memory on a Pi
    # Characters one /v1/read may find: a meter reading or an amount has under a dozen; 32 bounds the batch the
    # model runs (each touching pair is read several ways) and so one request's latency.
    max_digits: int = 32
    max_image_pixels: int | None = None  # decompression-bomb limit; None: preprocess.MAX_PIXELS
    # Seconds from a request's first byte to its last; a slower one gets 408. A slow sender holds no thread meanwhile,
    # only memory and a connection; a 5 MB photo over a 2 Mbit/s link takes 20 s.
    read_timeout: float = 30.0
    log_level: str = "INFO"
    feedback: bool = True  # POST/GET /v1/feedback store and count corrections; off: both answer 404
    feedback_db: Path = field(default_factory=default_path)  # systemd's StateDirectory, else the user's data folder
    feedback_max_bytes: int = DEFAULT_MAX_BYTES  # past it a correction gets 507: nothing is ever deleted to make room


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be 0-65535 (0: any free port)")
    return value


def _positive(text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number of {unit}") from None
    if not 0 < value < 1e6:
        raise ValueError("must be more than 0")
    return value


def _megabytes(text: str) -> int:
    return int(_positive(text, "megabytes") * 1024 * 1024)


def _seconds(text: str) -> float:
    return _positive(text, "seconds")


def _names(values: str | list[str]) -> list[str]:
    items = [values] if isinstance(values, str) else values
    names = [name.strip() for item in items for name in item.split(",") if name.strip()]
    if not names:
        raise ValueError("names no model")
    return names


def _log_level(text: str) -> str:
    if text.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return text.upper()


def _off(text: str) -> bool:
    """The value of a `--no-X` switch (or its variable set to 1/true/yes) -> X's setting, False."""
    if text.strip().lower() not in ("1", "true", "yes", "on"):
        raise ValueError("set it to 1 to turn the feature off, or leave it unset")
    return False


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty")
    return text.strip()


# ServeConfig field -> (command-line flag, environment variable, how to parse either's text). Flags win.
SOURCES: dict[str, tuple[str, str, Callable]] = {
    "models_dir": ("--models-dir", "MODELS_DIR", lambda text: Path(_text(text))),
    "models": ("--model", "MODEL", _names),
    "default_model": ("--default-model", "DEFAULT_MODEL", _text),
    "providers": ("--providers", "PROVIDERS", lambda text: tuple(_names(text))),
    "onnx_threads": ("--onnx-threads", "ONNX_THREADS", _positive_int),
    "workers": ("--workers", "WORKERS", _positive_int),
    "threads": ("--threads", "THREADS", _positive_int),
    "host": ("--host", "HOST", _text),
    "port": ("--port", "PORT", _port),
    "token": ("--token", "TOKEN", _text),
    "max_body_bytes": ("--max-body-mb", "MAX_BODY_MB", _megabytes),
    "max_batch": ("--max-batch", "MAX_BATCH", _positive_int),
    "max_digits": ("--max-digits", "MAX_DIGITS", _positive_int),
    "max_image_pixels": ("--max-image-pixels", "MAX_IMAGE_PIXELS", _positive_int),
    "read_timeout": ("--read-timeout", "READ_TIMEOUT", _seconds),
    "log_level": ("--log-level", "LOG_LEVEL", _log_level),
    "feedback": ("--no-feedback", "NO_FEEDBACK", _off),
    "feedback_db": ("--feedback-db", "FEEDBACK_DB", lambda text: Path(_text(text))),
    "feedback_max_bytes": ("--feedback-max-mb", "FEEDBACK_MAX_MB", _megabytes),
}


def env_name(field_name: str) -> str:
    """The environment variable for a setting, e.g. MNIST_EDGE_PORT."""
    return ENV_PREFIX + SOURCES[field_name][1]


def config_from(args: object | None = None, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Flags win over MNIST_EDGE_* variables, which win over the defaults; a bad value is a ConfigError."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    for name, (flag, _, parse) in SOURCES.items():
        dest = flag.removeprefix("--").replace("-", "_")
        raw, source = getattr(args, dest, None), flag
        if raw is None:
            raw, source = environ.get(env_name(name)), env_name(name)
        if raw is None:
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}", setting=name) from None
    return ServeConfig(**values)
