"""`streamlit run tests/bare_canvas.py`: the floor for the canvas page's speed.

Only the product's canvas (same component, size and pen) and a marker echoing its ink, so the time from mouse-up to
this marker is what Streamlit and the component cost, with no API and no page around it.
"""

from __future__ import annotations

import streamlit as st

from mnist_edge.webui.canvas import draw

PEN = 18  # the page's default pen width

drawing = draw(PEN, "canvas")
if drawing.pixels is None:
    st.html('<div class="mnist-edge-answer" data-state="blank"></div>')
else:
    ink = int(drawing.pixels[:, :, :3].max(axis=2).sum())
    st.html(f'<div class="mnist-edge-answer" data-state="answer" data-strokes="{drawing.strokes}" data-ink="{ink}"></div>')
