"""The serving path never imports TensorFlow: checked in a fresh interpreter, where nothing else has imported it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "onnx")  # onnxruntime is allowed; the onnx package is not

SCRIPT = textwrap.dedent("""
    import io, json, sys
    import numpy as np
    from PIL import Image
    from mnist_edge.cli import build_parser
    from mnist_edge.runtime.api.app import create_app
    from mnist_edge.runtime.config import ServeConfig

    build_parser()  # the CLI, as `mnist-edge serve` imports it
    app = create_app(ServeConfig(models_dir=sys.argv[1]))
    page = np.full((64, 64), 255, np.uint8); page[10:54, 28:36] = 0
    buffer = io.BytesIO(); Image.fromarray(page).save(buffer, format="PNG")
    client = app.test_client()
    statuses = [client.post(f"/v1/predict?backend={slot.name}", data=buffer.getvalue(), content_type="image/png").status_code
                for slot in app.extensions["mnist_edge"].registry.loaded()]
    statuses.append(client.post("/v2/models/onnx-int8/infer", json={"inputs": [
        {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0] * 784}]}).status_code)
    heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2].split(",")))
    print(json.dumps({"statuses": statuses, "heavy": heavy, "models": len(statuses) - 1}))
""")


def test_serving_imports_no_tensorflow(shipped_models):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(shipped_models), ",".join(HEAVY)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["models"] >= 2 and set(report["statuses"]) == {200}, report
    assert report["heavy"] == [], f"the serving path imported {report['heavy']}"
