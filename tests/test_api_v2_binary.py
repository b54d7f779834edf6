"""The binary tensor data extension: the real tritonclient.http against waitress, and the byte-level rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.answers import split
from mnist_edge.runtime.preprocess import scale_pixels

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def server(app):
    """The shipped-models app behind waitress on a free loopback port."""
    running = start_background(app, threads=2)
    yield running
    running.close()


@pytest.fixture
def client(server):
    """The official Triton HTTP client, pointed at our server."""
    triton_client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield triton_client
    triton_client.close()


@pytest.fixture(scope="module")
def digits(confident_digits) -> tuple[np.ndarray, list[int]]:
    """MNIST test digits (uint8 N x 28 x 28) and their labels: the labels are the oracle."""
    return np.stack([digit for _, digit in confident_digits]), [label for label, _ in confident_digits]


def test_server_and_model_metadata_through_tritonclient(client, app):
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    name = app.extensions["mnist_edge"].registry.default
    assert client.is_model_ready(name)
    meta = client.get_model_metadata(name)
    assert meta["inputs"][0]["name"] == "image" and meta["outputs"][0]["name"] == "probabilities"


@pytest.mark.parametrize("datatype", ["UINT8", "FP32"])
@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False, None])  # None: no outputs named, so the client asks for binary
def test_tritonclient_gets_the_right_digits(client, app, digits, datatype, binary_in, binary_out):
    pixels, labels = digits
    tensor = pixels if datatype == "UINT8" else scale_pixels(pixels)
    name = app.extensions["mnist_edge"].registry.default
    request_input = triton.InferInput("image", list(tensor.shape), datatype)
    request_input.set_data_from_numpy(tensor, binary_data=binary_in)
    outputs = None if binary_out is None else [triton.InferRequestedOutput("probabilities", binary_data=binary_out)]
    result = client.infer(name, [request_input], outputs=outputs, request_id="digits")
    probs = result.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == (len(labels), 10)
    assert list(probs.argmax(axis=1)) == labels
    expected, expected_score = split(app.extensions["mnist_edge"].registry.get(name).backend.predict(scale_pixels(pixels)))
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    if binary_out is None:  # no outputs named: both come back, the digit score too
        np.testing.assert_allclose(result.as_numpy("digit_score")[:, 0], expected_score, atol=1e-6)
    output = result.get_response()["outputs"][0]
    if binary_out is False:
        assert "data" in output and "parameters" not in output
    else:
        assert output["parameters"] == {"binary_data_size": 4 * 10 * len(labels)} and "data" not in output
    assert result.get_response()["id"] == "digits"


def test_tritonclient_sees_our_400_messages(client, app):
    name = app.extensions["mnist_edge"].registry.default
    wrong = triton.InferInput("image", [1, 784], "FP32")  # a flat row, not an image
    wrong.set_data_from_numpy(np.zeros((1, 784), np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer(name, [wrong])
    assert info.value.status() == "400" and "[N, 28, 28, 1]" in info.value.message()


def binary_request(tensor: np.ndarray, datatype: str, *, size: int | None = None, extra: bytes = b"",
                   header_length: str | None = None, **top) -> tuple[bytes, dict]:
    """A hand-built binary request: the JSON header, then the tensor's little-endian bytes."""
    raw = tensor.astype("<f4" if datatype == "FP32" else "u1").tobytes()
    header = json.dumps({"inputs": [{"name": "image", "shape": list(tensor.shape), "datatype": datatype,
                                     "parameters": {"binary_data_size": len(raw) if size is None else size}}],
                         **top}).encode()
    return header + raw + extra, {HEADER: header_length or str(len(header))}


def test_a_binary_answer_is_json_then_little_endian_floats(app, mnist):
    pixels = mnist.x_test[:3]
    body, headers = binary_request(pixels, "UINT8", parameters={"binary_data_output": True})
    response = app.test_client().post("/v2/models/onnx-int8/infer", data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/octet-stream"
    raw = response.get_data()
    length = int(response.headers[HEADER])
    answer = json.loads(raw[:length])
    output, score = answer["outputs"]
    assert output["shape"] == [3, 10] and output["parameters"] == {"binary_data_size": 120}
    assert score["shape"] == [3, 1] and score["parameters"] == {"binary_data_size": 12}
    probs = np.frombuffer(raw[length : length + 120], dtype="<f4").reshape(3, 10)
    assert len(raw) == length + 120 + 12
    assert list(probs.argmax(axis=1)) == [int(label) for label in mnist.y_test[:3]]


def test_an_output_choice_overrides_the_request_default(app, mnist):
    body, headers = binary_request(mnist.x_test[:1], "UINT8", parameters={"binary_data_output": True},
                                   outputs=[{"name": "probabilities", "parameters": {"binary_data": False}}])
    response = app.test_client().post("/v2/models/onnx-int8/infer", data=body, headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/json" and HEADER not in response.headers
    assert len(response.json["outputs"][0]["data"]) == 10


def framed(document: dict, tail: bytes) -> tuple[bytes, dict]:
    """Any JSON header and any bytes after it, with the header's true length."""
    header = json.dumps(document).encode()
    return header + tail, {HEADER: str(len(header))}


def uint8_input(pixels: np.ndarray) -> dict:
    """A JSON-mode UINT8 input."""
    return {"name": "image", "shape": list(pixels.shape), "datatype": "UINT8", "data": pixels.ravel().tolist()}


@pytest.mark.parametrize(("case", "message"), [
    ("size one short", "binary_data_size is 783 bytes, but shape [1, 28, 28] of UINT8 (1 byte each) is 784"),
    ("fp32 size as uint8", "binary_data_size is 784 bytes, but shape [1, 28, 28, 1] of FP32 (4 bytes each) is 3136"),
    ("bytes missing", "declares 784 bytes of binary data, but 700 follow the JSON header"),
    ("bytes extra", "declares 784 bytes of binary data, but 788 follow the JSON header"),
    ("size not a number", "binary_data_size must be a whole number of bytes"),
    ("size negative", "binary_data_size must be a whole number of bytes"),
    ("header past the body", "must be the JSON header's length in bytes"),
    ("header not a number", "must be the JSON header's length in bytes"),
    ("header cuts the JSON", "not valid JSON"),
    ("no HTTP header", "not valid JSON"),
    ("data and size", "both `data` and binary_data_size"),
    ("bytes without size", "bytes follow the JSON header, but the input has no binary_data_size"),
    ("fp32 NaN", "NaN"),
])
def test_byte_counts_are_checked_with_clear_400s(app, mnist, case, message):
    pixels = mnist.x_test[:1]
    body, headers = {
        "size one short": lambda: binary_request(pixels, "UINT8", size=783),
        "fp32 size as uint8": lambda: binary_request(scale_pixels(pixels), "FP32", size=784),
        "bytes missing": lambda: (lambda b, h: (b[:-84], h))(*binary_request(pixels, "UINT8")),
        "bytes extra": lambda: binary_request(pixels, "UINT8", extra=b"\x00" * 4),
        "size not a number": lambda: binary_request(pixels, "UINT8", size="784"),
        "size negative": lambda: binary_request(pixels, "UINT8", size=-784),
        "header past the body": lambda: binary_request(pixels, "UINT8", header_length="99999"),
        "header not a number": lambda: binary_request(pixels, "UINT8", header_length="12 bytes"),
        "header cuts the JSON": lambda: binary_request(pixels, "UINT8", header_length="20"),
        "no HTTP header": lambda: (binary_request(pixels, "UINT8")[0], {}),
        "data and size": lambda: framed({"inputs": [{**uint8_input(pixels), "parameters": {"binary_data_size": 784}}]},
                                        pixels.tobytes()),
        "bytes without size": lambda: framed({"inputs": [uint8_input(pixels)]}, pixels.tobytes()),
        "fp32 NaN": lambda: binary_request(np.full((1, 28, 28, 1), np.nan, np.float32), "FP32"),
    }[case]()
    response = app.test_client().post("/v2/models/onnx-int8/infer", data=body, headers=headers)
    assert response.status_code == 400, (case, response.data[:300])
    assert set(response.json) == {"error"} and message in response.json["error"], response.json
