"""Deployment files: the systemd unit for a Pi, the KServe InferenceService, and the Triton repository they serve."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml

from mnist_edge.convert.triton import MAX_BATCH, export_triton
from mnist_edge.runtime.manifest import read_manifest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT = DEPLOY / "mnist-edge.service"
HARDENING = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "Restart": "on-failure"}


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}} (keys may repeat, as Environment= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert current is not None and equals and re.fullmatch(r"[A-Za-z]+", key), f"line {number}: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_has_the_sections_and_hardening_it_needs():
    unit = unit_sections(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service[key] == [value], key
    assert re.fullmatch(r"\d+[KMG]", service["MemoryMax"][0])
    assert service["ExecStart"][0].split()[:2] == ["/opt/mnist-edge/venv/bin/mnist-edge", "serve"]
    runtime_dir = service["RuntimeDirectory"][0]
    assert f"PROMETHEUS_MULTIPROC_DIR=/run/{runtime_dir}" in service["Environment"]
    assert any(value.startswith("MNIST_EDGE_HOST=127.0.0.1") for value in service["Environment"])  # loopback unless told
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    # verify also checks that ExecStart exists: point it at this interpreter, which does.
    text = UNIT.read_text().replace("/opt/mnist-edge/venv/bin/mnist-edge serve", f"{sys.executable} -m mnist_edge.cli serve")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_inference_service_serves_the_triton_repository_over_v2():
    service = yaml.safe_load((DEPLOY / "kserve-inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "triton" and model["protocolVersion"] == "v2"
    assert model["runtime"] == "kserve-tritonserver" and model["storageUri"].endswith("/triton")


def test_the_triton_repository_matches_the_onnx_models_it_holds(shipped_models, mnist, tmp_path):
    from mnist_edge.runtime.answers import split
    from mnist_edge.runtime.backends.onnx import OnnxBackend
    from mnist_edge.runtime.preprocess import scale_pixels

    manifest = read_manifest(shipped_models)
    onnx_names = sorted(n for n, e in manifest["artifacts"].items() if e["format"] == "onnx")
    names = export_triton(shipped_models, manifest, tmp_path / "triton")
    assert sorted(names) == onnx_names and onnx_names
    assert sorted(p.name for p in (tmp_path / "triton").iterdir()) == onnx_names  # no staging folders left behind
    images = scale_pixels(mnist.x_test[:200])
    for name in names:
        folder = tmp_path / "triton" / name
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["1", "1/model.onnx", "config.pbtxt"]
        model = folder / "1" / "model.onnx"
        config = (folder / "config.pbtxt").read_text()
        assert f'name: "{name}"' in config and 'platform: "onnxruntime_onnx"' in config
        assert f"max_batch_size: {MAX_BATCH}" in config and "dynamic_batching { }" in config
        threshold = manifest["artifacts"][name]["threshold"]
        assert f'parameters {{ key: "digit_threshold" value {{ string_value: "{threshold}" }} }}' in config
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        [given], answers = session.get_inputs(), session.get_outputs()
        # Triton's batching needs the model's first dimension free, and config.pbtxt must name its real tensors.
        assert not isinstance(given.shape[0], int) and list(given.shape[1:]) == [28, 28, 1]
        assert re.search(rf'name: "{re.escape(given.name)}"\s+data_type: TYPE_FP32\s+dims: \[ 28, 28, 1 \]', config)
        assert [(a.name, a.shape[1]) for a in answers] == [("probabilities", 10), ("digit_score", 1)]
        for answer in answers:
            assert re.search(rf'name: "{answer.name}"\s+data_type: TYPE_FP32\s+dims: \[ {answer.shape[1]} \]', config)
        # Triton answers what mnist-edge's /v2 answers: the served model's outputs, read apart the same way. (ONNX
        # Runtime fuses an int8 graph's last quantize-dequantize pair differently once nodes follow it: one int8 step.)
        probabilities, score = session.run(None, {given.name: images})
        served = OnnxBackend(shipped_models / manifest["artifacts"][name]["file"])
        served.load()
        expected_probabilities, expected_score = split(served.predict(images))
        atol = 1e-5 if manifest["artifacts"][name]["precision"] == "fp32" else 1 / 127
        np.testing.assert_allclose(probabilities, expected_probabilities, atol=atol)
        np.testing.assert_allclose(score[:, 0], expected_score, atol=atol)
        assert (probabilities.argmax(axis=1) == expected_probabilities.argmax(axis=1)).mean() >= 0.995
        assert (probabilities.argmax(axis=1) == mnist.y_test[:200]).mean() > 0.97
