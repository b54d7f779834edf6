"""The served models: built from models/manifest.json, each loaded, hash-checked and warmed up on its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_edge.runtime.answers import split
from mnist_edge.runtime.backends import Backend, backend_class
from mnist_edge.runtime.backends.base import INPUT_SHAPE
from mnist_edge.runtime.backends.onnx import DEFAULT_PROVIDERS, OnnxBackend
from mnist_edge.runtime.errors import MnistEdgeError, ModelLoadError, UnknownNameError
from mnist_edge.runtime.manifest import read_manifest, sha256_file

log = logging.getLogger(__name__)

OPTIONAL_FORMATS = ("keras",)  # loaded only when named: they need TensorFlow, which the edge install lacks


@dataclass
class ModelSlot:
    """One manifest artifact and what became of loading it."""

    name: str
    entry: dict
    backend: Backend | None = None
    error: str | None = None
    info: dict = field(default_factory=dict)
    threshold: float = 0.0  # a digit score below it is "not a digit" (runtime/answers.py); set once loaded

    @property
    def loaded(self) -> bool:
        return self.backend is not None


def model_path(models_dir: Path, file: object) -> Path:
    """A manifest `file` as a path inside the models folder; `..`, absolute paths and links out of it are refused."""
    if not isinstance(file, str) or not file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise ModelLoadError(f"manifest file {file!r} must be a relative path inside the models folder")
    root = Path(models_dir).resolve()
    path = (root / file).resolve()
    if not path.is_relative_to(root):  # a symlink that leads out of the folder
        raise ModelLoadError(f"manifest file {file!r} leads outside the models folder")
    return path


def digit_threshold(entry: dict) -> float:
    """An artifact's not-a-digit threshold, chosen for it by convert; without one it cannot answer."""
    threshold = entry.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ModelLoadError(f"{entry.get('file')} has no not-a-digit threshold between 0 and 1 in the manifest "
                             f"(got {threshold!r}): run `mnist-edge convert` with this version")
    return float(threshold)


def load_slot(name: str, entry: dict, models_dir: Path, *, providers, threads: int) -> ModelSlot:
    """Check the file against its manifest hash and load it; a failure is recorded, never raised."""
    slot = ModelSlot(name, entry)
    try:
        threshold = digit_threshold(entry)
        path = model_path(models_dir, entry.get("file"))
        if not path.is_file():
            raise ModelLoadError(f"{entry['file']} is missing")
        if not entry.get("sha256"):
            raise ModelLoadError(f"{entry['file']} has no sha256 in the manifest: an unverified file is not loaded "
                                 "(run `mnist-edge convert` to write one)")
        if sha256_file(path) != entry["sha256"]:
            raise ModelLoadError(f"{entry['file']} does not match its manifest sha256 (changed or corrupt)")
        cls = backend_class(entry["format"])
        backend = cls(path, providers=providers, threads=threads) if cls is OnnxBackend else cls(path)
        backend.load()
        split(backend.predict(np.zeros((1, *INPUT_SHAPE), np.float32)))  # a model of an older release cannot answer
    except MnistEdgeError as exc:
        slot.error = exc.message
        log.error("model %s not loaded: %s", name, exc.message)
        return slot
    slot.backend, slot.info, slot.threshold = backend, backend.info(), threshold
    return slot


class ModelRegistry:
    """Models by name (the manifest's artifact names), with a default."""

    def __init__(self, slots: dict[str, ModelSlot], default: str | None) -> None:
        self.slots = slots
        loaded = [name for name, slot in slots.items() if slot.loaded]
        if default not in loaded and loaded:
            # Only a default that failed to load is worth a line: one outside the loaded set is either the manifest's
            # (replaced quietly) or --default-model's, which create_app refuses with its own one line.
            if default in slots:
                log.warning("default model %s is not loaded; using %s", default, loaded[0])
            default = loaded[0]
        self.default = default

    @classmethod
    def from_manifest(
        cls,
        models_dir: Path,
        *,
        names: list[str] | None = None,
        default: str | None = None,
        providers: tuple[str, ...] = DEFAULT_PROVIDERS,
        threads: int = 1,
    ) -> ModelRegistry:
        """Load the named artifacts (default: every one that needs no TensorFlow)."""
        manifest = read_manifest(models_dir)
        artifacts = manifest["artifacts"]
        if names is None:
            names = [n for n, e in artifacts.items() if e["format"] not in OPTIONAL_FORMATS]
        unknown = [n for n in names if n not in artifacts]
        if unknown:
            raise UnknownNameError("model", unknown[0], list(artifacts))
        slots = {n: load_slot(n, artifacts[n], models_dir, providers=providers, threads=threads) for n in names}
        return cls(slots, default or manifest.get("default"))

    def get(self, name: str | None = None) -> ModelSlot:
        """The loaded model of that name (the default when None); 404 if unknown, 503 if it failed to load."""
        name = name or self.default
        slot = self.slots.get(name) if name else None
        if slot is None:
            raise UnknownNameError("model", str(name), list(self.slots))
        if not slot.loaded:
            raise ModelLoadError(f"model {name} is not loaded: {slot.error}", model=name)
        return slot

    def loaded(self) -> list[ModelSlot]:
        """Every model that is serving."""
        return [slot for slot in self.slots.values() if slot.loaded]
