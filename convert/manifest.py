"""models/manifest.json: what each artifact is, how it was made and how well it measured."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_edge.convert.files import sha256_file, write_atomic
from mnist_edge.convert.formats import Format
from mnist_edge.runtime.errors import DataError

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


def artifact_entry(fmt: Format, path: Path, tensors: dict, metrics: dict, seconds: float) -> dict:
    """One artifact's manifest record."""
    return {
        "name": fmt.name,
        "format": fmt.format,
        "precision": fmt.precision,
        "file": fmt.file,
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        **metrics,
        "tolerance": {"max_accuracy_drop": fmt.tolerance.max_accuracy_drop,
                      "min_agreement": fmt.tolerance.min_agreement,
                      "max_abs_diff": fmt.tolerance.max_abs_diff},
        "made_from": fmt.source if fmt.convert else "training",
        "convert_seconds": round(seconds, 2),
        **tensors,
    }


def write_manifest(models_dir: Path, manifest: dict) -> None:
    """Write the manifest atomically, after every artifact it names is in place."""
    write_atomic(models_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


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
