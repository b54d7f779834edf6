"""models/manifest.json: what each artifact is, how it was made and how well it measured."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_edge.convert.files import write_atomic
from mnist_edge.convert.formats import Format
from mnist_edge.runtime.manifest import MANIFEST_FILE, sha256_file

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
                      "min_is_digit_agreement": fmt.tolerance.min_is_digit_agreement,
                      "max_abs_diff": fmt.tolerance.max_abs_diff},
        "made_from": fmt.source if fmt.convert else "training",
        "convert_seconds": round(seconds, 2),
        **tensors,
    }


def write_manifest(models_dir: Path, manifest: dict) -> None:
    """Write the manifest atomically, after every artifact it names is in place."""
    write_atomic(models_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
