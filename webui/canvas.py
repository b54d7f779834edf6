"""The drawing canvas (streamlit-drawable-canvas); importable only inside a running Streamlit app."""

from __future__ import annotations

from streamlit_drawable_canvas import st_canvas  # raises outside a running Streamlit app

from mnist_edge.webui.page import Drawing

SIDE = 280  # 10x MNIST's 28: room to draw, and an even step down to the 20 px box


def draw(stroke_width: int, key: str) -> Drawing:
    """The 280 x 280 canvas, white ink on black; it sends its pixels 200 ms after each stroke's mouse-up."""
    result = st_canvas(stroke_width=stroke_width, stroke_color="#FFFFFF", background_color="#000000",
                       height=SIDE, width=SIDE, drawing_mode="freedraw", return_image_data=True, key=key)
    strokes = len((result.json_data or {}).get("objects", []))
    return Drawing(result.image_data, strokes)
