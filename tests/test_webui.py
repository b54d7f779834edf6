"""The canvas page's logic with Streamlit's AppTest against a real API on a loopback port (the canvas injected)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading

import numpy as np
import pyarrow.ipc
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig
from mnist_edge.webui.client import ApiClient, ApiError
from mnist_edge.webui.drawing import (COPY_HEIGHT, COPY_WIDTH, DIGIT_CANVAS, NUMBER_CANVAS, boxable_copy, boxed,
                                      canvas_png, enlarged)
from mnist_edge.webui.page import DIGIT, NUMBER, NUMBER_HINT

# The page as the app runs it, with the canvas replaced by whatever the test put in session state; the canvas asked
# for (key, size) is kept there too.
SCRIPT = """
import streamlit as st
from mnist_edge.webui.page import Drawing, main
def draw(stroke_width, key, size, label):
    st.session_state["asked"] = (key, size)
    return Drawing(st.session_state.get("pixels"), st.session_state.get("strokes", 1))
main(draw)
"""


@pytest.fixture(scope="module")
def api(app):
    """The shipped models behind waitress on a free loopback port."""
    running = start_background(app)
    yield running.url
    running.close()


@pytest.fixture(scope="module")
def locked_api(shipped_models):
    """An API that wants a token."""
    running = start_background(create_app(ServeConfig(models_dir=shipped_models, models=["tflite-int8"], token="s3cret")))
    yield running.url
    running.close()


@pytest.fixture
def silent_api():
    """A port that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def canvas(digit: np.ndarray) -> np.ndarray:
    """A 28 x 28 MNIST digit as the canvas holds it: 280 x 280 RGBA, white ink on an opaque black background."""
    big = np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR))
    pixels = np.zeros((280, 280, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[30:230, 50:250, :3] = big[:, :, None]
    return pixels


def page(monkeypatch, url: str, pixels: np.ndarray | None = None, *, compare: bool = False, mode: str = DIGIT,
         **env: str) -> AppTest:
    """The page run once against `url` in `mode` with `pixels` on the canvas (and every model's answer open if
    `compare`)."""
    monkeypatch.setenv("MNIST_EDGE_API_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    if pixels is not None:
        at.session_state["pixels"] = pixels
    if compare:
        at.session_state["compare_open"] = True  # as if the expander had been clicked open
    at.session_state["mode"] = mode
    at.run()
    assert not at.exception, at.exception
    return at


def markers(at: AppTest) -> dict[str, str]:
    """The machine-readable answer elements, by state, as their raw HTML."""
    found = {}
    for element in at.get("html"):
        body = element.proto.body
        if 'class="mnist-edge-answer"' in body:
            state = body.split('data-state="', 1)[1].split('"', 1)[0]
            found[state] = body
    return found


def attr(html: str, name: str) -> str:
    """One data- attribute's value from a marker's HTML."""
    return html.split(f'data-{name}="', 1)[1].split('"', 1)[0]


def first_of_each_class(mnist) -> list[tuple[int, np.ndarray]]:
    """The first MNIST test digit of every class, with its label."""
    return [(label, mnist.x_test[int(np.flatnonzero(mnist.y_test == label)[0])]) for label in range(10)]


def test_a_blank_canvas_shows_the_hint_and_sends_nothing(monkeypatch, api):
    calls = []
    monkeypatch.setattr(ApiClient, "predict", lambda *a, **k: calls.append(a) or {})
    at = page(monkeypatch, api, np.zeros((280, 280, 4), dtype=np.uint8) + np.array([0, 0, 0, 255], dtype=np.uint8))
    assert "Draw a digit" in at.info[0].value
    assert set(markers(at)) == {"blank"} and calls == []


def test_drawn_digits_come_back_with_their_label_chart_image_and_timings(monkeypatch, api, mnist):
    right = 0
    for label, digit in first_of_each_class(mnist):
        at = page(monkeypatch, api, canvas(digit))
        answer = markers(at)["answer"]
        right += attr(answer, "prediction") == str(label)
    assert right >= 9, f"{right} of 10 digits read right"
    assert len(at.get("vega_lite_chart")) == 1 and len(at.expander) == 1  # the ten probabilities; every model
    assert "what the model saw" in str(at.get("image")[0].proto)
    assert "inference" in at.caption[0].value and attr(answer, "backend") in at.caption[0].value


def test_the_model_selector_lists_loaded_models_default_first_and_picks_the_backend(monkeypatch, api, app, mnist):
    at = page(monkeypatch, api, canvas(mnist.x_test[0]))
    registry = app.extensions["mnist_edge"].registry
    options = at.sidebar.selectbox[0].options
    assert [o.split(" ")[0] for o in options][0] == registry.default
    assert sorted(o.split(" ")[0] for o in options) == sorted(s.name for s in registry.loaded())
    assert "KB" in options[0] and "%" in options[0]
    at.sidebar.selectbox[0].set_value(options[-1].split(" ")[0]).run()
    assert attr(markers(at)["answer"], "backend") == options[-1].split(" ")[0]


def test_compare_runs_only_while_open_and_then_shows_every_loaded_model(monkeypatch, api, app, mnist):
    calls = []
    monkeypatch.setattr(ApiClient, "compare", lambda *a, **k: calls.append(a) or {})
    at = page(monkeypatch, api, canvas(mnist.x_test[0]))
    assert "compare" not in markers(at) and calls == []  # closed: no call per model on every stroke
    monkeypatch.undo()
    at = page(monkeypatch, api, canvas(mnist.x_test[0]), compare=True)
    compare = markers(at)["compare"]
    assert sorted(attr(compare, "models").split(",")) == sorted(s.name for s in app.extensions["mnist_edge"].registry.loaded())
    table = at.table[0].value
    assert list(table["model"]) == attr(compare, "models").split(",")
    assert set(table["reads"]) == {"7"} and attr(compare, "agree") == "true"


def test_a_drawing_that_is_no_digit_is_answered_in_words(monkeypatch, api, app, mnist):
    from mnist_edge.train.negatives import negative

    # Smileys: a held-out generator, never trained on. Most must be called what they are.
    said = []
    for index in range(3):
        face = negative("faces", index, mnist.x_test, mnist.y_test, seed=0, stream="evaluation")
        at = page(monkeypatch, api, face)
        answer = markers(at)["answer"]
        said.append(attr(answer, "prediction"))
        if said[-1] == "none":
            assert "That is not a digit" in str([h.proto.body for h in at.get("html")])
            assert 0 <= float(attr(answer, "digit_score")) < app.extensions["mnist_edge"].registry.get().threshold
    assert said.count("none") >= 2, said


def test_no_api_is_a_friendly_line_not_a_traceback(monkeypatch, mnist):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    at = page(monkeypatch, closed, canvas(mnist.x_test[0]), compare=True)
    said = [e.value for e in [*at.warning, *at.error] if "Cannot reach the API" in e.value]
    assert len(said) == 1 and "mnist-edge serve" in said[0], said  # the status line, not again in the answer
    assert attr(markers(at)["error"], "code") == "unreachable"


def test_a_silent_api_times_out_with_a_message(monkeypatch, silent_api, mnist):
    at = page(monkeypatch, silent_api, canvas(mnist.x_test[0]), MNIST_EDGE_API_TIMEOUT="0.3")
    said = [e.value for e in [*at.warning, *at.error] if "did not answer within" in e.value]
    assert len(said) == 1, said
    assert attr(markers(at)["error"], "code") == "timeout"


def test_a_token_comes_from_the_environment_and_a_missing_one_is_explained(monkeypatch, locked_api, mnist):
    at = page(monkeypatch, locked_api, canvas(mnist.x_test[0]))
    assert "wants a token" in at.error[0].value and attr(markers(at)["error"], "status") == "401"
    at = page(monkeypatch, locked_api, canvas(mnist.x_test[0]), MNIST_EDGE_TOKEN="s3cret")
    assert attr(markers(at)["answer"], "prediction") == "7"
    # The page uses it without showing it: a field's value reaches every browser that opens the page.
    assert [field.value for field in at.text_input if field.label == "Token"] == [""]


def test_the_client_passes_on_the_apis_own_message(api):
    with pytest.raises(ApiError) as caught:
        ApiClient(url=api).predict(b"\x89PNG\r\n\x1a\n broken", content_type="image/png")
    assert caught.value.status == 400 and "The API answered 400: " in caught.value.message
    with pytest.raises(ApiError) as caught:
        ApiClient(url=api).predict(b"", model="no-such-model")
    assert caught.value.status in (400, 404)
    with pytest.raises(ApiError) as caught:
        ApiClient(url=api).read(png_of(Image.new("L", NUMBER_CANVAS, 0)))  # nothing written
    assert caught.value.status == 400 and caught.value.code == "blank_image", caught.value.message


def test_a_kept_connection_the_server_closes_as_a_call_goes_out_is_replaced_not_an_error():
    """The server answers a connection's first request and closes it on reading the second, as a server whose
    keep-alive ran out does at that moment: the call goes once more, on a new connection, and gets its answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = b'{"models": []}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(answer),
                                                                                                      answer)

    def serve() -> None:
        for _ in range(2):  # the first connection, then the one the client opens again
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(reply)
                connection.recv(65536)  # the second request: read, never answered
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ApiClient(url=f"http://127.0.0.1:{listener.getsockname()[1]}", token=None, timeout=(2.0, 2.0))
    try:
        assert client.models() == {"models": []}
        assert client.models() == {"models": []}  # sent on the kept connection, closed unanswered, sent again
    finally:
        client.close()
        thread.join(timeout=5)
        listener.close()


def test_canvas_png_is_one_channel_and_none_when_blank(mnist):
    assert canvas_png(None) is None
    assert canvas_png(np.zeros((280, 280, 4), dtype=np.uint8)) is None
    pixels = canvas(mnist.x_test[0])
    pixels[..., :3] = pixels[..., :3] * np.array([0, 1, 0], dtype=np.uint8)  # green ink reads as well as white
    image = Image.open(io.BytesIO(canvas_png(pixels)))
    assert image.mode == "L" and image.size == (280, 280)
    assert np.array_equal(np.asarray(image), pixels[..., 1])


def test_enlarged_keeps_every_pixel_sharp():
    buffer = io.BytesIO()
    Image.fromarray(np.arange(784, dtype=np.uint32).reshape(28, 28).astype(np.uint8)).save(buffer, format="PNG")
    big = np.asarray(enlarged(base64.b64encode(buffer.getvalue()).decode()))
    assert big.shape == (196, 196)
    assert np.array_equal(big[::7, ::7], np.arange(784).reshape(28, 28).astype(np.uint8))


def test_the_chart_and_the_models_view_match_the_labelled_digit(monkeypatch, api, mnist):
    # Known answers, not the API's code: each chart peaks at the digit's label, and the image shown is the digit
    # itself (up to the MNIST-style normalization), not transposed or mirrored.
    from mnist_edge.webui import page as page_module

    shown, show = [], page_module.st.image
    monkeypatch.setattr(page_module.st, "image", lambda image, **k: shown.append(image) or show(image, **k))
    peaks, similar = 0, 0
    for label, digit in first_of_each_class(mnist):
        at = page(monkeypatch, api, canvas(digit))
        chart = at.get("vega_lite_chart")[0].proto  # Streamlit sends the inline values as an Arrow table
        bars = pyarrow.ipc.open_stream(chart.data.data).read_all().to_pydict()
        assert json.loads(chart.spec)["encoding"]["y"]["field"] == "probability"
        probabilities = bars["probability"]
        assert bars["digit"] == list(range(10))
        assert abs(sum(probabilities) - 1) < 1e-3 and min(probabilities) >= 0
        peaks += int(np.argmax(probabilities)) == label
        seen = np.asarray(shown[-1], dtype=np.float64)[::7, ::7]
        assert seen.shape == (28, 28)
        similar += np.corrcoef(seen.ravel(), digit.ravel().astype(np.float64))[0, 1] > 0.6
    assert peaks >= 9, f"{peaks} of 10 charts peak at the digit's label"
    assert similar == 10, f"{similar} of 10 shown images look like the digit drawn"


@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 255)])
def test_labelled_digits_in_a_coloured_pen_read_right(monkeypatch, api, mnist, colour):
    right = 0
    for label, digit in first_of_each_class(mnist):
        pixels = canvas(digit)
        pixels[..., :3] = (pixels[..., :3].astype(np.uint16) * np.array(colour) // 255).astype(np.uint8)
        right += attr(markers(page(monkeypatch, api, pixels))["answer"], "prediction") == str(label)
    assert right >= 9, f"{right} of 10 digits in pen colour {colour} read right"
def png_of(image: Image.Image) -> bytes:
    """An image's PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def number_canvas(digits: list[np.ndarray], *, tall: int = 160) -> tuple[np.ndarray, list[list[int]]]:
    """MNIST digits side by side on the number canvas as it holds them (RGBA, white on black), and each one's box."""
    width, height = NUMBER_CANVAS
    step = width // len(digits)
    side = min(tall, step - 20)  # a gap of 20 px at least between neighbours
    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    boxes = []
    for n, digit in enumerate(digits):
        x, y = n * step + (step - side) // 2, (height - side) // 2
        pixels[y:y + side, x:x + side, :3] = np.asarray(Image.fromarray(digit).resize((side, side)))[:, :, None]
        boxes.append([x, y, side, side])
    return pixels, boxes


def read_answer(items: list[tuple[int, bool, list[int]]]) -> dict:
    """An answer as POST /v1/read gives it, for (digit, is_digit, box) items."""
    digits = [{"digit": d, "confidence": 0.97, "is_digit": ok, "digit_score": 0.95 if ok else 0.1, "box": box,
               "probabilities": [0.97 if k == d else 0.0033 for k in range(10)]} for d, ok, box in items]
    return {"number": "".join(str(d) for d, ok, _ in items if ok), "digits": digits, "backend": "tflite-int8",
            "format": "tflite", "precision": "int8", "timings_ms": {"preprocess": 1.0, "inference": 0.5, "total": 2.0}}


def number_boxes(at: AppTest) -> list[str]:
    """The boxes drawn over the copy of the image, as their raw HTML."""
    bodies = [h.proto.body for h in at.get("html") if 'class="number-boxes"' in h.proto.body]
    assert len(bodies) == 1, bodies
    return bodies[0].split('<div class="number-box" ')[1:]


def test_number_mode_sits_beside_the_default_digit_mode_with_its_own_wide_canvas(monkeypatch, api):
    calls = []
    monkeypatch.setattr(ApiClient, "read", lambda *a, **k: calls.append(a) or {})
    at = page(monkeypatch, api)
    assert at.radio(key="mode").value == DIGIT and at.session_state["asked"] == ("canvas", DIGIT_CANVAS)
    at.radio(key="mode").set_value(NUMBER).run()
    assert at.session_state["asked"] == ("number-canvas", NUMBER_CANVAS)
    assert at.title[0].value == "Read a number" and at.info[0].value == NUMBER_HINT
    assert attr(markers(at)["blank"], "number") == "" and calls == []


def test_number_mode_reads_a_drawn_number_large_with_a_box_on_each_digit(monkeypatch, api, mnist):
    first = {label: mnist.x_test[int(np.flatnonzero(mnist.y_test == label)[0])] for label in range(10)}
    pixels, slots = number_canvas([first[int(d)] for d in "2024"])
    sent = []
    read = ApiClient.read
    monkeypatch.setattr(ApiClient, "read", lambda client, image, **k: sent.append(image) or read(client, image, **k))
    at = page(monkeypatch, api, pixels, mode=NUMBER)
    assert Image.open(io.BytesIO(sent[0])).size == NUMBER_CANVAS  # the whole wide drawing, one PNG
    answer = markers(at)["answer"]
    assert attr(answer, "number") == "2024" and attr(answer, "items") == "4" and attr(answer, "not_digits") == "0"
    assert any(">2024</div>" in h.proto.body and "font-size:6rem" in h.proto.body for h in at.get("html"))
    drawn = number_boxes(at)
    assert [b.split('data-digit="', 1)[1].split('"', 1)[0] for b in drawn] == list("2024")
    for box, (x, y, w, h) in zip(drawn, slots):  # each box on its own digit, in percent of the 840 x 280 canvas
        left, top, width, height = (float(box.split(f"{side}:", 1)[1].split("%", 1)[0])
                                    for side in ("left", "top", "width", "height"))
        assert 100 * x / 840 <= left and left + width <= 100 * (x + w) / 840, (box, x, w)
        assert 100 * y / 280 <= top and top + height <= 100 * (y + h) / 280, (box, y, h)
    assert "4 digits read" in at.markdown[0].value and "inference" in at.caption[0].value
    assert not at.expander  # every model's answer is one digit each: not offered beside a number


def test_number_mode_marks_an_item_that_is_no_digit_in_red(monkeypatch, api, mnist):
    pixels, slots = number_canvas([mnist.x_test[0]] * 3)
    monkeypatch.setattr(ApiClient, "read", lambda *a, **k: read_answer([(7, True, slots[0]), (5, False, slots[1]),
                                                                         (7, True, slots[2])]))
    at = page(monkeypatch, api, pixels, mode=NUMBER)
    answer = markers(at)["answer"]
    assert attr(answer, "number") == "77" and attr(answer, "items") == "3" and attr(answer, "not_digits") == "1"
    drawn = number_boxes(at)
    assert [b.split('data-digit="', 1)[1].split('"', 1)[0] for b in drawn] == ["7", "none", "7"]
    assert "7 · 97.0%" in drawn[0] and "#ff4b4b" in drawn[1] and ">?</span>" in drawn[1] and "#ff4b4b" not in drawn[2]
    assert "1 mark that is no digit" in at.markdown[0].value


def test_number_mode_says_why_an_image_with_too_many_characters_is_refused(monkeypatch, shipped_models, mnist):
    running = start_background(create_app(ServeConfig(models_dir=shipped_models, models=["tflite-int8"],
                                                       max_digits=2)))
    try:
        at = page(monkeypatch, running.url, number_canvas([mnist.x_test[0]] * 3)[0], mode=NUMBER)
    finally:
        running.close()
    assert attr(markers(at)["error"], "status") == "413" and attr(markers(at)["error"], "number") == ""
    assert "The API answered 413" in at.error[0].value and "limit is 2" in at.error[0].value


def test_boxable_copy_is_upright_small_and_in_the_apis_pixels():
    photo = Image.new("RGB", (4000, 3000), "white")
    photo.paste((0, 0, 0), (100, 100, 600, 200))  # ink at the top left, as the camera's sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show upright
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif)
    url, size = boxable_copy(buffer.getvalue())
    assert size == (3000, 4000)  # what the API's boxes are in: the upright photo
    assert url.startswith("data:image/jpeg;base64,")
    copy = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert copy.height <= COPY_HEIGHT and copy.width <= COPY_WIDTH and copy.width < copy.height
    ink = np.argwhere(np.asarray(copy.convert("L")) < 128)
    assert ink[:, 1].min() > copy.width / 2  # turned: the ink now sits at the top right
    drawn = canvas_png(number_canvas([np.full((28, 28), 255, np.uint8)] * 3)[0])
    url, size = boxable_copy(drawn)
    assert url == "data:image/png;base64," + base64.b64encode(drawn).decode() and size == NUMBER_CANVAS  # as sent


def test_boxed_places_boxes_in_percent_of_the_image():
    body = boxed("data:image/png;base64,", (200, 100), read_answer([(3, True, [0, 0, 200, 100])])["digits"])
    assert "left:0.000%;top:0.000%;width:100.000%;height:100.000%" in body and "#21c354" in body
    assert "width:min(100%, 420px)" in boxed("data:,", (28, 28), [])  # a small image is shown big, as tall as a photo


@pytest.fixture(scope="module")
def feedback_apis(app, tmp_path_factory):
    """The shipped models behind APIs whose corrections store is fresh, full (1 KB cap) or off."""
    folder, registry = tmp_path_factory.mktemp("feedback"), app.extensions["mnist_edge"].registry
    models_dir = app.extensions["mnist_edge"].config.models_dir
    configs = {"fresh": ServeConfig(models_dir=models_dir, feedback_db=folder / "fresh.sqlite3"),
               "full": ServeConfig(models_dir=models_dir, feedback_db=folder / "full.sqlite3", feedback_max_bytes=1024),
               "off": ServeConfig(models_dir=models_dir, feedback=False)}
    apps = {name: create_app(config, registry=registry) for name, config in configs.items()}
    running = {name: start_background(served) for name, served in apps.items()}
    yield {name: (server.url, apps[name]) for name, server in running.items()}
    for server in running.values():
        server.close()


def feedback_marker(at: AppTest) -> dict[str, str]:
    """The feedback row's marker: its state and count."""
    [body] = [e.proto.body for e in at.get("html") if 'class="mnist-edge-feedback"' in e.proto.body]
    return {name: attr(body, name) for name in ("state", "count") if f"data-{name}=" in body}


def saved_lines(at: AppTest) -> list[str]:
    """The green lines that say a correction was stored (the status line is green too)."""
    return [s.value for s in at.success if s.value.startswith("Saved.")]


def test_right_stores_the_drawing_once_and_says_how_many_are_stored(monkeypatch, feedback_apis, mnist):
    url, app = feedback_apis["fresh"]
    store = app.extensions["mnist_edge"].feedback
    before = len(store.corrections())
    at = page(monkeypatch, url, canvas(mnist.x_test[0]))
    assert feedback_marker(at) == {"state": "ready"}
    said = attr(markers(at)["answer"], "prediction")
    at.button(key=next(b.key for b in at.button if b.label == "Right")).click().run()
    assert not at.exception, at.exception
    noun = "correction" if before == 0 else "corrections"
    assert saved_lines(at) == [f"Saved. {before + 1} {noun} so far."]
    assert feedback_marker(at) == {"state": "saved", "count": str(before + 1)}
    at.run()  # a rerun (the status check, a widget) stores nothing again
    [row] = store.corrections()[before:]
    assert str(row.label) == said and row.png == canvas_png(canvas(mnist.x_test[0]))
    assert any(f"Corrections stored: {before + 1}" in c.value for c in at.sidebar.caption)


def test_wrong_stores_the_chosen_label_or_not_a_digit(monkeypatch, feedback_apis, mnist):
    url, app = feedback_apis["fresh"]
    store = app.extensions["mnist_edge"].feedback
    before = len(store.corrections())
    for index, choice in ((1, 4), (2, "not a digit")):
        at = page(monkeypatch, url, canvas(mnist.x_test[index]))
        at.pills[0].set_value(choice).run()
        assert not at.exception, at.exception
        assert feedback_marker(at)["state"] == "saved"
        assert saved_lines(at) == [f"Saved. {before + index} corrections so far."]
    assert [row.label for row in store.corrections()[before:]] == [4, None]
    assert store.corrections()[-1].answer_digit == int(attr(markers(at)["answer"], "prediction"))


def test_a_save_that_fails_is_one_friendly_line_and_the_buttons_stay(monkeypatch, feedback_apis, mnist):
    at = page(monkeypatch, feedback_apis["full"][0], canvas(mnist.x_test[0]))
    at.button(key=next(b.key for b in at.button if b.label == "Right")).click().run()
    assert not at.exception, at.exception
    [line] = [e.value for e in at.error]
    assert line.startswith("Not saved: The API answered 507:") and "cap" in line and "restart" not in line
    assert feedback_marker(at) == {"state": "failed"} and any(b.label == "Right" for b in at.button)


def test_an_api_without_feedback_offers_no_buttons(monkeypatch, feedback_apis, mnist):
    at = page(monkeypatch, feedback_apis["off"][0], canvas(mnist.x_test[0]))
    assert "answer" in markers(at) and not at.pills and not [b for b in at.button if b.label == "Right"]
    assert any("Corrections are off" in c.value for c in at.sidebar.caption)
