"""Triton Inference Server / KServe model repository from the ONNX artifacts."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mnist_edge.convert.files import write_atomic

MAX_BATCH = 64  # Triton's dynamic batcher merges requests up to this size
# The manifest's dtype names as Triton's config.pbtxt spells them.
TRITON_DTYPES = {"float32": "TYPE_FP32", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8"}


def _tensor(spec: dict) -> str:
    dims = ", ".join(str(d) for d in spec["shape"][1:])  # Triton leaves the batch dimension out
    return f'  {{\n    name: "{spec["name"]}"\n    data_type: {TRITON_DTYPES[spec["dtype"]]}\n    dims: [ {dims} ]\n  }}'


def config_pbtxt(entry: dict) -> str:
    """The config.pbtxt of one ONNX artifact."""
    inputs = ",\n".join(_tensor(t) for t in entry["inputs"])
    outputs = ",\n".join(_tensor(t) for t in entry["outputs"])
    return (
        f'name: "{entry["name"]}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {MAX_BATCH}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        "dynamic_batching { }\n"
        'instance_group [ { kind: KIND_AUTO } ]\n'
    )


def export_triton(models_dir: Path, manifest: dict, repository: Path) -> list[str]:
    """Write <name>/config.pbtxt and <name>/1/model.onnx for every ONNX artifact; return the names."""
    repository = Path(repository)
    repository.mkdir(parents=True, exist_ok=True)
    names = []
    for name, entry in manifest["artifacts"].items():
        if entry["format"] != "onnx":
            continue
        with tempfile.TemporaryDirectory(dir=repository, prefix=f".{name}-") as tmp:
            staged = Path(tmp) / name
            (staged / "1").mkdir(parents=True)
            shutil.copyfile(Path(models_dir) / entry["file"], staged / "1" / "model.onnx")
            write_atomic(staged / "config.pbtxt", config_pbtxt(entry))
            target = repository / name
            if target.exists():
                shutil.rmtree(target)
            staged.replace(target)
        names.append(name)
    return names
