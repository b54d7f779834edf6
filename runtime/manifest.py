"""Reading models/manifest.json (written by mnist_edge.convert) and checking files against it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mnist_edge.runtime.errors import DataError

MANIFEST_FILE = "manifest.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(models_dir: Path) -> dict:
    """Read and minimally check a manifest; a missing or broken one is a one-line error."""
    path = Path(models_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no {MANIFEST_FILE} in {models_dir}: run `mnist-edge convert` first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise DataError(f"{path} has no `artifacts` table")
    return manifest
