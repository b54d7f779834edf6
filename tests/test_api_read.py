"""POST /v1/read through the app on the shipped models: real numbers, every transport, boxes, the cap, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from api_fixtures import b64, canvas_png, png
from PIL import Image, ImageDraw, ImageFont

from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.runtime.segment import IN_A_NUMBER

GAP = 30  # px between digits on the page, at 200 px per digit


def number_page(digits: list[np.ndarray], *, gap: int = GAP, height: int = 200) -> tuple[np.ndarray, list[list[int]]]:
    """MNIST 28 x 28 digits side by side as a canvas has them (each enlarged, cropped to its ink, dark on white), and
    each digit's ink box [x, y, w, h] on the page."""
    parts, boxes, x = [], [], gap
    for digit in digits:
        big = np.asarray(Image.fromarray(digit).resize((height, height), Image.Resampling.BILINEAR))
        cols = np.flatnonzero(big.max(axis=0) > 0)
        big = big[:, cols[0] : cols[-1] + 1]
        parts += [big, np.zeros((height, gap), np.uint8)]
        # Ink is what stands above preprocessing's noise floor, 15 % of the darkest stroke.
        ys, xs = np.nonzero(big > 0.15 * 255)
        boxes.append([x + int(xs.min()), 40 + int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1])
        x += big.shape[1] + gap
    line = np.hstack([np.zeros((height, gap), np.uint8), *parts])
    return 255 - np.pad(line, ((40, 40), (0, 0))), boxes


@pytest.fixture(scope="module")
def number(confident_digits) -> tuple[str, bytes, int, list[list[int]]]:
    """The confident test digits as one number on one page: its text, its PNG, the page's width, the digits' boxes."""
    labels = "".join(str(label) for label, _ in confident_digits)
    page, boxes = number_page([digit for _, digit in confident_digits])
    return labels, png(page), page.shape[1], boxes


def check_read(body: dict, width: int, height: int) -> None:
    """An answer holds every promised field, boxes inside the image and in reading order."""
    assert set(body) == {"number", "digits", "backend", "format", "precision", "timings_ms"}
    assert body["number"] == "".join(str(item["digit"]) for item in body["digits"] if item["is_digit"])
    lefts = []
    for item in body["digits"]:
        assert list(item)[:6] == ["digit", "confidence", "is_digit", "digit_score", "box", "probabilities"]
        x, y, w, h = item["box"]
        assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= width and y + h <= height
        assert item["confidence"] == max(item["probabilities"]) and len(item["probabilities"]) == 10
        if len(body["digits"]) > 1:  # among others, a character is a digit from IN_A_NUMBER (shipped thresholds ~0.48)
            assert item["is_digit"] == (item["digit_score"] >= IN_A_NUMBER)
        lefts.append(x)
    assert lefts == sorted(lefts)


@pytest.mark.parametrize("form", ["raw-png", "multipart", "json-base64", "data-url", "pixels"])
def test_a_number_is_read_in_every_transport(client, number, form):
    text, data, width, _ = number
    page = np.asarray(Image.open(io.BytesIO(data)))
    requests = {
        "raw-png": dict(data=data, content_type="image/png"),
        "multipart": dict(data={"file": (io.BytesIO(data), "n.png")}, content_type="multipart/form-data"),
        "json-base64": dict(json={"image": b64(data)}),
        "data-url": dict(json={"image": "data:image/png;base64," + b64(data)}),
        "pixels": dict(json={"pixels": page.tolist()}),
    }
    response = client.post("/v1/read", **requests[form])
    assert response.status_code == 200, response.json
    assert response.json["number"] == text
    check_read(response.json, width, page.shape[0])


def test_each_box_is_its_digits_ink(client, number):
    _, data, _, boxes = number
    body = client.post("/v1/read", data=data, content_type="image/png").json
    for item, expected in zip(body["digits"], boxes, strict=True):
        # Cut at a third of its size (segment.LINE_PIXELS), the 200 px line's boxes are whole multiples of 3 px.
        assert np.abs(np.array(item["box"]) - expected).max() <= 3, (item["box"], expected)


def test_a_letter_between_digits_stays_an_item_that_is_not_a_digit(client, number):
    text, data, _, boxes = number
    page = np.asarray(Image.open(io.BytesIO(data)))
    letter = Image.new("L", (200, page.shape[0]), 255)
    ImageDraw.Draw(letter).text((10, 30), "K", fill=0, font=ImageFont.load_default(200))
    split = boxes[0][0] + boxes[0][2] + GAP // 2  # between the first two digits
    body = client.post("/v1/read", data=png(np.hstack([page[:, :split], np.asarray(letter), page[:, split:]])),
                       content_type="image/png").json
    assert body["number"] == text
    assert [item["is_digit"] for item in body["digits"]] == [True, False] + [True] * (len(text) - 1)
    check_read(body, page.shape[1] + 200, page.shape[0])


def test_a_photo_is_read_with_boxes_in_the_upright_image(client):
    # examples/photo_2.jpg is stored sideways with EXIF Orientation 6: the answer's boxes are in the upright frame.
    from pathlib import Path

    data = (Path(__file__).resolve().parent.parent / "examples" / "photo_2.jpg").read_bytes()
    stored = Image.open(io.BytesIO(data))
    assert stored.getexif().get(0x0112) == 6
    body = client.post("/v1/read", data=data, content_type="image/jpeg").json
    assert body["number"] == "2"
    check_read(body, stored.height, stored.width)  # turned a quarter: the displayed width is the stored height


@pytest.mark.parametrize("name", ["number_2024.png", "photo_number_371.jpg"])
def test_the_shipped_number_examples_read_right(client, name):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / name
    with Image.open(path) as image:
        width, height = image.size if image.getexif().get(0x0112, 1) in (1, 3) else image.size[::-1]
    body = client.post("/v1/read", data=path.read_bytes(), content_type="application/octet-stream").json
    assert body["number"] == path.stem.split("_")[-1]
    check_read(body, width, height)


def test_one_digit_reads_as_predict_answers(client, known_digits):
    pixels, _ = known_digits
    agreed = []
    for digit in pixels[:40]:
        data = canvas_png(digit)
        read = client.post("/v1/read", data=data, content_type="image/png").json
        predicted = client.post("/v1/predict", data=data, content_type="image/png").json
        same = len(read["digits"]) == 1 and read["digits"][0]["probabilities"] == predicted["probabilities"]
        assert same or predicted["confidence"] * predicted["digit_score"] < 0.5  # only a doubtful one may be cut
        if same:
            assert read["number"] == (str(predicted["digit"]) if predicted["is_digit"] else "")
        agreed.append(same)
    assert sum(agreed) >= 39


def test_all_candidates_go_to_the_model_in_one_call(app, client, monkeypatch):
    from test_segment import ONE, ZERO, shifted, written

    backend = app.extensions["mnist_edge"].registry.get().backend
    calls = []
    real = backend.predict
    monkeypatch.setattr(backend, "predict", lambda batch: calls.append(len(batch)) or real(batch))
    image = written(ZERO, shifted(ZERO, 98), shifted(ONE, 250), size=(700, 280))
    body = client.post("/v1/read", data=png(image), content_type="image/png").json
    assert len(calls) == 1 and calls[0] > len(body["digits"])  # the touching pair was read several ways at once


def test_return_image_gives_what_the_model_saw(client, number):
    body = client.post("/v1/read?return_image=1", data=number[1], content_type="image/png").json
    for item in body["digits"]:
        seen = Image.open(io.BytesIO(__import__("base64").b64decode(item["image"])))
        assert seen.size == (28, 28)


def test_a_blank_image_is_the_same_400_as_predict(client):
    blank = png(np.full((60, 200), 255, dtype=np.uint8))
    read = client.post("/v1/read", data=blank, content_type="image/png")
    predicted = client.post("/v1/predict", data=blank, content_type="image/png")
    assert read.status_code == predicted.status_code == 400
    assert read.json == predicted.json and read.json["error"]["code"] == "blank_image"


def test_more_characters_than_the_cap_is_a_413(shipped_models, number):
    text, data, _, _ = number
    capped = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], max_digits=len(text) - 1))
    response = capped.test_client().post("/v1/read", data=data, content_type="image/png")
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"
    assert response.json["error"]["details"]["limit"] == len(text) - 1
    at_cap = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], max_digits=len(text)))
    assert at_cap.test_client().post("/v1/read", data=data, content_type="image/png").json["number"] == text


def test_a_batch_is_refused_and_the_options_are_predicts(client, number, loaded_names):
    response = client.post("/v1/read", json={"instances": [{"image": b64(number[1])}]})
    assert response.status_code == 400 and response.json["error"]["code"] == "unknown_parameter"
    for name in loaded_names:
        body = client.post(f"/v1/read?backend={name}", data=number[1], content_type="image/png").json
        assert body["backend"] == name and body["number"] == number[0]


def test_reads_are_counted_under_their_route(client, number):
    client.post("/v1/read", data=number[1], content_type="image/png")
    scrape = client.get("/metrics").get_data(as_text=True)
    assert 'mnist_edge_requests_total{endpoint="/v1/read",method="POST",status="200"}' in scrape
