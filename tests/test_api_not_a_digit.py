"""The not-a-digit decision through the API: every v1 answer carries it, /v2 has it as a second output, and the
shipped models make it on drawings no training step saw (held-out generators, MNIST test digits drawn on a canvas)."""

from __future__ import annotations

import numpy as np
import pytest
from api_fixtures import FACES, opaque_face

from mnist_edge.runtime.answers import split
from mnist_edge.runtime.manifest import read_manifest
from mnist_edge.runtime.preprocess import scale_pixels
from mnist_edge.train.drawn import iter_drawn, to_png
from mnist_edge.train.negatives import HELD_OUT, negative


@pytest.fixture(scope="module")
def held_out(mnist) -> list[tuple[str, bytes]]:
    """Four drawings of each held-out generator, from its evaluation stream, as canvas PNGs."""
    return [(name, to_png(negative(name, i, mnist.x_test, mnist.y_test, seed=0, stream="evaluation")))
            for name in HELD_OUT for i in range(4)]


def test_every_v1_answer_carries_is_digit_and_its_score(app, client, mnist, held_out, shipped_models):
    manifest = read_manifest(shipped_models)
    threshold = manifest["artifacts"][manifest["default"]]["threshold"]
    described = {m["name"]: m["digit_threshold"] for m in client.get("/v1/models").json["models"]}
    assert described == {name: entry["threshold"] for name, entry in manifest["artifacts"].items() if name in described}
    flagged = 0
    for _, image in held_out:
        body = client.post("/v1/predict", data=image, content_type="image/png").json
        assert body["is_digit"] == (body["digit_score"] >= threshold) and 0 <= body["digit_score"] <= 1
        assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
        flagged += not body["is_digit"]
    assert flagged >= 0.75 * len(held_out), f"only {flagged} of {len(held_out)} held-out non-digits flagged"
    batch = client.post("/v1/predict", json={"instances": [{"pixels": mnist.x_test[i].tolist()} for i in range(8)]}).json
    assert [p["is_digit"] for p in batch["predictions"]] == [True] * 8
    assert [p["digit"] for p in batch["predictions"]] == mnist.y_test[:8].tolist()


def test_drawn_test_digits_are_digits(client, mnist):
    # 200 drawings: enough to tell a 1 % false-rejection rate from a broken threshold (the target is measured on
    # 10,000 by drawn-eval), so at most 2 % may be rejected here and at most 2 % read wrong.
    drawn = list(iter_drawn(mnist.x_test, mnist.y_test, 200, seed=7))
    answers = [client.post("/v1/predict", data=to_png(image), content_type="image/png").json for image, _, _ in drawn]
    assert sum(not a["is_digit"] for a in answers) <= 4
    assert sum(a["digit"] != label for a, (_, label, _) in zip(answers, drawn)) <= 4


def test_compare_rows_carry_the_decision_and_agree_on_it(client, held_out, loaded_names):
    bodies = [client.post("/v1/compare", data=image, content_type="image/png").json for _, image in held_out]
    for body in bodies:
        assert [r["backend"] for r in body["results"]] == loaded_names
        assert all(isinstance(r["is_digit"], bool) and 0 <= r["digit_score"] <= 1 for r in body["results"])
        # Agreement is one answer from every model: the same digit, or "not a digit" whatever digit each guessed.
        answers = {r["digit"] if r["is_digit"] else "not a digit" for r in body["results"]}
        assert body["agree"] is (len(answers) == 1)
    all_flagged = [b for b in bodies if not any(r["is_digit"] for r in b["results"])]
    assert all_flagged, "no held-out drawing was flagged by every model"
    assert all(b["agree"] is True for b in all_flagged)  # every model says "not a digit": that is agreement


def test_v2_answers_the_score_as_a_second_output(app, client, mnist):
    name = "onnx-fp32"
    outputs = client.get(f"/v2/models/{name}").json["outputs"]
    assert [(o["name"], o["shape"]) for o in outputs] == [("probabilities", [-1, 10]), ("digit_score", [-1, 1])]
    pixels = mnist.x_test[:3]
    inputs = [{"name": "image", "datatype": "UINT8", "shape": [3, 28, 28], "data": pixels.ravel().tolist()}]
    both = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs}).json["outputs"]
    assert [(o["name"], o["shape"]) for o in both] == [("probabilities", [3, 10]), ("digit_score", [3, 1])]
    expected = split(app.extensions["mnist_edge"].registry.get(name).backend.predict(scale_pixels(pixels)))[1]
    np.testing.assert_allclose(both[1]["data"], expected, atol=1e-6)
    only = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, "outputs": [{"name": "digit_score"}]}).json
    assert [o["name"] for o in only["outputs"]] == ["digit_score"]
    wrong = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, "outputs": [{"name": "logits"}]})
    assert wrong.status_code == 400 and "digit_score" in wrong.json["error"]


@pytest.mark.parametrize("name", FACES)
def test_a_face_drawn_in_thick_strokes_over_the_frame_is_not_a_digit(client, name):
    # Ink on half the canvas once read as blank paper (400 blank_image); a drawing with ink gets an answer.
    response = client.post("/v1/predict", data=opaque_face(name), content_type="image/png")
    assert response.status_code == 200, response.json
    assert response.json["is_digit"] is False
