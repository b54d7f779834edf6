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


def with_answer_outputs(onnx_model: bytes) -> bytes:
    """The model with mnist-edge's answer computed in the graph: its eleven-way output becomes `probabilities`
    (the ten digits renormalized) and `digit_score` (1 - P(not a digit)), so Triton answers as /v2 does."""
    import onnx
    from onnx import TensorProto, helper

    from mnist_edge.convert.onnx import rename_tensors
    from mnist_edge.runtime.answers import NOT_A_DIGIT, OUTPUTS

    model = onnx.load_from_string(onnx_model)
    graph = model.graph
    raw = "classes"
    rename_tensors(graph, {graph.output[0].name: raw})
    constants = {"zero": [0], "ten": [NOT_A_DIGIT], "eleven": [NOT_A_DIGIT + 1], "axis": [1]}
    graph.initializer.extend(helper.make_tensor(name, TensorProto.INT64, [1], value) for name, value in constants.items())
    graph.initializer.extend(helper.make_tensor(name, TensorProto.FLOAT, [], [value]) for name, value in (("tiny", 1e-12), ("one", 1.0)))
    probabilities, score = (o["name"] for o in OUTPUTS)
    graph.node.extend([
        helper.make_node("Slice", [raw, "zero", "ten", "axis"], ["digits"]),
        helper.make_node("Slice", [raw, "ten", "eleven", "axis"], ["none"]),
        helper.make_node("ReduceSum", ["digits", "axis"], ["digit_mass"], keepdims=1),
        helper.make_node("Max", ["digit_mass", "tiny"], ["digit_mass_safe"]),
        helper.make_node("Div", ["digits", "digit_mass_safe"], [probabilities]),
        helper.make_node("Sub", ["one", "none"], [score]),
    ])
    del graph.output[:]
    graph.output.extend(helper.make_tensor_value_info(o["name"], TensorProto.FLOAT, ["N", o["shape"][1]]) for o in OUTPUTS)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def config_pbtxt(entry: dict) -> str:
    """The config.pbtxt of one ONNX artifact, with the outputs `with_answer_outputs` gives it and, as a model
    parameter for clients to read, its not-a-digit threshold."""
    from mnist_edge.runtime.answers import OUTPUTS

    inputs = ",\n".join(_tensor(t) for t in entry["inputs"])
    outputs = ",\n".join(_tensor({**o, "dtype": "float32"}) for o in OUTPUTS)
    return (
        f'name: "{entry["name"]}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {MAX_BATCH}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        "dynamic_batching { }\n"
        'instance_group [ { kind: KIND_AUTO } ]\n'
        f'parameters {{ key: "digit_threshold" value {{ string_value: "{entry["threshold"]}" }} }}\n'
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
            (staged / "1" / "model.onnx").write_bytes(with_answer_outputs((Path(models_dir) / entry["file"]).read_bytes()))
            write_atomic(staged / "config.pbtxt", config_pbtxt(entry))
            target = repository / name
            if target.exists():
                shutil.rmtree(target)
            staged.replace(target)
        names.append(name)
    return names


def export_served(models_dir: Path, repository: Path) -> list[str]:
    """The served set's ONNX artifacts as a Triton repository, each file checked against its manifest sha256 first;
    nothing is written into `models_dir`."""
    from mnist_edge.convert.publish import checked_set
    from mnist_edge.runtime.errors import DataError
    from mnist_edge.train.runs import refuse_served

    refuse_served(repository, "export")
    if Path(repository).resolve().is_relative_to(Path(models_dir).resolve()):
        raise DataError(f"--triton {repository} is inside {models_dir}: name a folder outside the models")
    manifest, _ = checked_set(models_dir)
    return export_triton(models_dir, manifest, repository)
