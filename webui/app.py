"""`streamlit run webui/app.py`: the drawing canvas (canvas.py) on the page in page.py."""

from __future__ import annotations

from mnist_edge.webui.canvas import draw
from mnist_edge.webui.page import main

main(draw)
