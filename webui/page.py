"""The Streamlit page: settings and status, the drawing or upload, the answer, and every model side by side; in Number
mode a wide canvas, the number read and each item boxed.

The canvas itself comes in as `draw`, so a test (AppTest cannot render the canvas) passes pixels instead.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from mnist_edge.webui.client import ApiClient, ApiError
from mnist_edge.webui.drawing import DIGIT_CANVAS, NUMBER_CANVAS, boxable_copy, boxed, canvas_png, enlarged
from mnist_edge.webui.feedback import feedback_count, feedback_row

STATUS_EVERY = 2.0  # seconds between readiness checks: the page notices an API that stops or comes back
UPLOAD_TYPES = ["png", "jpg", "jpeg"]
DRAW, UPLOAD = "Draw", "Upload a photo or scan"
DIGIT, NUMBER = "One digit", "Number"
BLANK_HINT = "Draw a digit (0-9) in the black box: the answer appears after every stroke."
NUMBER_HINT = ("Write a number (say 2024) in the wide black box, its digits side by side: "
               "it is read after every stroke.")
COMPARE = "Every model on this drawing"
# Streamlit's uploader refuses a file over its limit in the browser, with no rerun: while its newest file is a refused
# one, the answers on the page belong to the file before, so they are hidden.
STALE_ANSWER_CSS = """<style>
.st-key-workspace:has([data-testid="stFileChips"] > div > div:last-child [aria-invalid="true"])
  :is(.st-key-answer, .st-key-every-model) { display: none; }
</style>"""


@dataclass
class Drawing:
    """What the canvas holds now: its RGBA pixels (None before the first stroke) and how many strokes made it."""

    pixels: np.ndarray | None
    strokes: int


# Renders the canvas at `stroke_width` under `key`, of (width, height) `size`, with its aria `label`; returns what it
# holds.
DrawFn = Callable[[int, str, tuple[int, int], str], Drawing]


@st.cache_resource
def _client(url: str, token: str | None) -> ApiClient:
    return ApiClient(url=url, token=token)  # one keep-alive session per address and token


@st.cache_data(ttl=5, show_spinner=False)
def _models(url: str, token: str | None) -> dict:
    return _client(url, token).models()  # an ApiError is raised, not cached: a restarted API is seen at once


@st.cache_data(max_entries=4, show_spinner=False)
def _boxable_copy(image: bytes) -> tuple[str, tuple[int, int]]:
    return boxable_copy(image)  # a rerun that is no new stroke or file (the status line, the model) decodes nothing


def _marker(state: str, **data: object) -> None:
    """The machine-readable answer a browser test reads: data-state, data-prediction, ..."""
    attrs = " ".join(f'data-{k}="{html.escape(str(v))}"' for k, v in {"state": state, **data}.items())
    st.html(f'<div class="mnist-edge-answer" {attrs}></div>')


def _settings() -> tuple[ApiClient, int]:
    defaults = ApiClient()
    with st.sidebar:
        st.header("Settings")
        url = st.text_input("API address", value=defaults.url, help="MNIST_EDGE_API_URL sets the default")
        # Never prefilled: a field's value travels to every browser that opens the page. An empty field uses the
        # UI's own MNIST_EDGE_TOKEN, which stays on the server.
        token = st.text_input("Token", type="password",
                              help="the server's bearer token, if it wants one (empty: the UI's MNIST_EDGE_TOKEN)")
        stroke = st.slider("Pen width", min_value=6, max_value=40, value=18, step=2)
    return _client(url, token or defaults.token), stroke


@st.fragment(run_every=STATUS_EVERY)
def _status(client: ApiClient) -> None:
    """One line: is the API ready? A change reruns the whole page, so it recovers without a reload."""
    try:
        ready = client.ready()
        up, line = bool(ready.get("ready")), (f"API ready at {client.url}, default model `{ready.get('default')}`"
                                              if ready.get("ready") else f"API at {client.url} is starting or has no model loaded")
    except ApiError as exc:
        up, line = False, exc.message
    (st.success if up else st.warning)(line, icon=":material/check_circle:" if up else ":material/error:")
    st.session_state["status_line"] = line  # an answer that fails for the same reason does not say it again
    if st.session_state.get("api_up") not in (None, up):
        st.session_state["api_up"] = up
        st.rerun()
    st.session_state["api_up"] = up


def _pick_model(client: ApiClient) -> str | None:
    """The sidebar's model selector, filled from /v1/models with the API's default first."""
    try:
        listing = _models(client.url, client.token)
    except ApiError:
        return None  # the status line says why
    loaded = [m for m in listing["models"] if m.get("loaded")]
    loaded.sort(key=lambda m: not m.get("default"))
    labels = {m["name"]: f"{m['name']} ({m.get('format')} {m.get('precision')}, "
                         f"{(m.get('size_bytes') or 0) / 1024:.0f} KB, {(m.get('accuracy') or 0):.2%})" for m in loaded}
    if not labels:
        return None
    return st.sidebar.selectbox("Model", list(labels), format_func=labels.get,
                                help="format, precision, size and MNIST test accuracy, from /v1/models")


def _bars(probabilities: list[float]) -> dict:
    """The ten probabilities as a Vega-Lite bar chart with its data inline (st.bar_chart costs ~5x more per stroke)."""
    return {"mark": {"type": "bar"},
            "data": {"values": [{"digit": d, "probability": p} for d, p in enumerate(probabilities)]},
            "encoding": {"x": {"field": "digit", "type": "ordinal", "axis": {"labelAngle": 0}},
                         "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]}}}}


def _timings(body: dict, round_trip: float) -> None:
    t = body["timings_ms"]
    st.caption(f"`{body['backend']}` ({body['format']} {body['precision']}): preprocess {t['preprocess']:.2f} ms, "
               f"inference {t['inference']:.2f} ms, API total {t['total']:.2f} ms, round trip {round_trip:.1f} ms")


def _answer(client: ApiClient, image: bytes, content_type: str, model: str | None, strokes: int) -> None:
    started = time.perf_counter()
    body = client.predict(image, content_type=content_type, model=model)
    round_trip = (time.perf_counter() - started) * 1000
    digit, confidence, score = body["digit"], body["confidence"], body["digit_score"]
    left, right = st.columns([3, 2])
    with left:
        if body["is_digit"]:
            st.html(f'<div style="font-size:7rem;font-weight:700;line-height:1">{digit}</div>'
                    f'<div style="font-size:1.3rem">{confidence:.1%} sure</div>')
        else:
            st.html('<div style="font-size:2.6rem;font-weight:700;line-height:1.1">That is not a digit</div>'
                    f'<div style="font-size:1.1rem">{1 - score:.1%} sure it is none; if it were one, '
                    f'it would most likely be a {digit}</div>')
        _marker("answer", prediction=digit if body["is_digit"] else "none", confidence=confidence, digit_score=score,
                strokes=strokes, backend=body["backend"])
        st.vega_lite_chart(_bars(body["probabilities"]), height=220)
    with right:
        st.image(enlarged(body["image"]), caption="what the model saw (28 x 28)")
    _timings(body, round_trip)
    if content_type == "image/png":  # corrections keep PNGs: the canvas's drawings and PNG uploads, not JPEG photos
        feedback_row(client, image, body)


def _number(client: ApiClient, image: bytes, content_type: str, model: str | None, strokes: int) -> None:
    started = time.perf_counter()
    body = client.read(image, content_type=content_type, model=model)
    round_trip = (time.perf_counter() - started) * 1000
    number, items = body["number"], body["digits"]
    others = sum(not item["is_digit"] for item in items)
    if number:
        st.html('<div style="font-size:6rem;font-weight:700;line-height:1;letter-spacing:0.06em">'
                f"{html.escape(number)}</div>")
    else:
        st.html('<div style="font-size:2.6rem;font-weight:700;line-height:1.1">No digit in it</div>')
    st.markdown(f"{len(number)} digit{'s' * (len(number) != 1)} read"
                + (f", and {others} mark{'s' * (others != 1)} that {'is' if others == 1 else 'are'} no digit (red)"
                   if others else ""))
    _marker("answer", number=number, items=len(items), not_digits=others, strokes=strokes, backend=body["backend"])
    st.html(boxed(*_boxable_copy(image), items))
    _timings(body, round_trip)


def _compare(client: ApiClient, image: bytes, content_type: str) -> None:
    body = client.compare(image, content_type=content_type)
    rows = body["results"]
    readings = [str(r["digit"]) if r["is_digit"] else "not a digit" for r in rows]
    verdict = (f"All {len(rows)} models read **{readings[0]}**." if body["agree"]
               else f"The models disagree: {', '.join(sorted(set(readings)))}.")
    st.markdown(verdict)
    st.table([{"model": r["backend"], "format": r["format"], "precision": r["precision"], "reads": reading,
               "confidence": f"{r['confidence']:.1%}", "digit score": f"{r['digit_score']:.3f}",
               "inference ms": f"{r['inference_ms']:.3f}"} for r, reading in zip(rows, readings)])
    _marker("compare", models=",".join(r["backend"] for r in rows), agree=str(body["agree"]).lower())


def _error(exc: ApiError) -> None:
    """A failed call in red, unless the status line above already says the same (an API that is down)."""
    if exc.message != st.session_state.get("status_line"):
        st.error(exc.message)


def _input(mode: str, source: str, draw: DrawFn, stroke: int) -> tuple[bytes | None, str, int, str]:
    """The image to send (None: nothing yet), its content type, the stroke count and what to say when empty."""
    number = mode == NUMBER
    if source == DRAW:
        # Each mode has its own canvas (key), so the square's strokes never land in the wide one's state.
        drawing = draw(stroke, "number-canvas", NUMBER_CANVAS, "write a number") if number \
            else draw(stroke, "canvas", DIGIT_CANVAS, "draw one digit")
        return canvas_png(drawing.pixels), "image/png", drawing.strokes, NUMBER_HINT if number else BLANK_HINT
    st.html(STALE_ANSWER_CSS)
    limit = st.get_option("server.maxUploadSize")  # `up` sets the API's limit; .streamlit/config.toml its default
    what = "a written number" if number else "one digit"
    upload = st.file_uploader(f"A PNG or JPEG of {what}: a photo of paper, a scan, a drawing", type=UPLOAD_TYPES,
                              help=f"At most {limit} MB: the API's request limit (`MNIST_EDGE_MAX_BODY_MB`).")
    if upload is None:
        return None, "", 0, f"Upload a PNG or JPEG of {'a handwritten number' if number else 'one handwritten digit'}."
    return upload.getvalue(), upload.type or "application/octet-stream", 0, ""


@st.fragment
def _workspace(client: ApiClient, model: str | None, mode: str, source: str, draw: DrawFn, stroke: int) -> None:
    """The drawing or upload and its answers: a stroke reruns only this, not the sidebar, status line and model list."""
    number = mode == NUMBER
    # A number's wide canvas takes the width, its answer goes below; a digit's square has its answer beside it.
    with st.container(key="workspace"):
        input_area, answer_area = (st.container(), st.container()) if number else st.columns([2, 3], gap="large")
        with input_area:
            image, content_type, strokes, hint = _input(mode, source, draw, stroke)
        # Number mode's markers carry data-number (empty until a number is read), the digit's data-prediction.
        empty = {"number": ""} if number else {"prediction": ""}
        with answer_area, st.container(key="answer"):
            if image is None:
                st.info(hint)
                _marker("blank", **empty)
                return
            try:
                (_number if number else _answer)(client, image, content_type, model, strokes)
            except ApiError as exc:
                _error(exc)
                _marker("error", **empty, status=exc.status or "", code=exc.code or "")
                return
        if number:
            return  # /v1/compare answers one digit per model: nothing to set beside a number
        # Every model's answer costs a call per model: asked for only while the expander is open.
        every_model = st.container(key="every-model").expander(COMPARE, key="compare_open", on_change="rerun")
        with every_model:
            if every_model.open:
                try:
                    _compare(client, image, content_type)
                except ApiError as exc:
                    _error(exc)


def main(draw: DrawFn) -> None:
    """The whole page; `draw` renders the canvas (canvas.py's component in the app, injected pixels in tests)."""
    number = st.session_state.get("mode") == NUMBER  # the mode switch below, as last set
    st.set_page_config(page_title=f"mnist-edge: {'read a number' if number else 'draw a digit'}",
                       page_icon=":material/draw:", layout="wide")
    client, stroke = _settings()
    feedback_count(client)
    st.title("Read a number" if number else "Draw a digit")
    _status(client)
    model = _pick_model(client)
    mode_column, source_column = st.columns([1, 2])
    mode = mode_column.radio("Read", [DIGIT, NUMBER], key="mode", horizontal=True, label_visibility="collapsed")
    source = source_column.radio("Input", [DRAW, UPLOAD], horizontal=True, label_visibility="collapsed")
    _workspace(client, model, mode, source, draw, stroke)
