"""The drawing canvas: a small Streamlit component of our own (canvas_script.py), white ink on black.

No toolbar floats over it, as streamlit-drawable-canvas 0.13's does over the top right of its canvas (a stroke that
started there left no ink): every pixel takes ink, and Undo and Clear sit below it.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
from PIL import Image

from mnist_edge.webui.canvas_script import CSS, HTML, JS
from mnist_edge.webui.drawing import DIGIT_CANVAS
from mnist_edge.webui.page import Drawing

INK, PAPER = "#FFFFFF", "#000000"

_pad = st.components.v2.component("mnist_edge.canvas", html=HTML, css=CSS, js=JS)


def pixels(data_url: str) -> np.ndarray:
    """The canvas's PNG (a data: URL) as RGBA pixels."""
    _, encoded = data_url.split(";base64,", 1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGBA"))


def draw(stroke_width: int, key: str, size: tuple[int, int] = DIGIT_CANVAS, label: str = "draw one digit") -> Drawing:
    """The canvas of `size` (width, height); it sends its pixels at each stroke's pointer-up (mouse, pen or finger),
    Undo and Clear."""
    width, height = size
    data = {"width": width, "height": height, "pen": stroke_width, "ink": INK, "paper": PAPER,
            "label": f"Drawing canvas: {label}"}
    state = _pad(key=key, data=data,
                 default={"drawing": None}, on_drawing_change=lambda: None, width="content", height="content")
    drawing = state.get("drawing") or {}
    png = drawing.get("png")
    return Drawing(pixels(png) if png else None, int(drawing.get("strokes") or 0))
