"""What the drawing canvas runs in the browser: its markup, style and script (a Streamlit v2 component, inline)."""

from __future__ import annotations

# Undo and Clear sit below the drawing, so nothing ever lies over it: every pixel takes ink.
HTML = """<div class="pad">
  <canvas></canvas>
  <div class="pad-actions">
    <button type="button" data-act="undo" disabled>Undo</button>
    <button type="button" data-act="clear" disabled>Clear</button>
  </div>
</div>"""

CSS = """
.pad { width: fit-content; max-width: 100%; user-select: none; -webkit-user-select: none; }
.pad canvas { display: block; max-width: 100%; cursor: crosshair; touch-action: none;
              outline: 1px solid var(--st-border-color, lightgrey); outline-offset: -1px; }
.pad-actions { display: flex; gap: 0.5rem; margin-top: 0.75rem; }
.pad-actions button { font: inherit; font-size: 0.9rem; padding: 0.3rem 0.9rem; cursor: pointer;
                      color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
                      border: 1px solid var(--st-border-color, #d6d6d9);
                      border-radius: var(--st-button-radius, 0.5rem); }
.pad-actions button:hover:not(:disabled) { border-color: var(--st-primary-color, #ff4b4b); }
.pad-actions button:disabled { opacity: 0.45; cursor: not-allowed; }
"""

# Streamlit calls the default export on every rerun with the same parent element: the pad (its strokes) lives in a
# WeakMap keyed by it, and only its size, label and pen follow `data`. A stroke is sent on its pointer-up, at once.
JS = """
const pads = new WeakMap();

const at = (pad, e) => {
  const box = pad.canvas.getBoundingClientRect();  // the canvas may be shown smaller than its pixels on a phone
  return { x: (e.clientX - box.left) * pad.canvas.width / box.width,
           y: (e.clientY - box.top) * pad.canvas.height / box.height };
};
const mid = (a, b) => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });

// Piece n of a stroke: a quadratic curve through point n-1 between the midpoints around it (smooth, like a pen).
const piece = (ctx, stroke, n) => {
  const p = stroke.points;
  ctx.strokeStyle = stroke.ink; ctx.lineWidth = stroke.width; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath();
  const from = n === 1 ? p[0] : mid(p[n - 2], p[n - 1]);
  ctx.moveTo(from.x, from.y);
  const to = n < p.length ? mid(p[n - 1], p[n]) : p[n - 1];
  ctx.quadraticCurveTo(p[n - 1].x, p[n - 1].y, to.x, to.y);
  ctx.stroke();
};
const dot = (ctx, stroke) => {
  const p = stroke.points[0];
  ctx.fillStyle = stroke.ink;
  ctx.beginPath(); ctx.arc(p.x, p.y, stroke.width / 2, 0, 2 * Math.PI); ctx.fill();
};
const paint = (pad, stroke) => {
  dot(pad.ctx, stroke);
  for (let n = 1; n <= stroke.points.length; n++) piece(pad.ctx, stroke, n);
};
const repaint = (pad) => {
  pad.ctx.fillStyle = pad.data.paper;
  pad.ctx.fillRect(0, 0, pad.canvas.width, pad.canvas.height);
  pad.strokes.forEach((stroke) => paint(pad, stroke));
};
const send = (pad) => {
  pad.undo.disabled = pad.clear.disabled = pad.strokes.length === 0;
  const png = pad.strokes.length ? pad.canvas.toDataURL("image/png") : null;
  pad.setStateValue("drawing", { png, strokes: pad.strokes.length });
};

const mount = (parent) => {
  const canvas = parent.querySelector(".pad canvas");
  const pad = { canvas, ctx: canvas.getContext("2d"), strokes: [], current: null, data: null, setStateValue: null,
                undo: parent.querySelector('[data-act="undo"]'), clear: parent.querySelector('[data-act="clear"]') };
  canvas.addEventListener("pointerdown", (e) => {
    if (pad.current || (e.pointerType === "mouse" && e.button !== 0)) return;  // one stroke at a time, left button
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);  // a stroke that leaves the canvas still ends with its pointer-up
    pad.current = { id: e.pointerId, ink: pad.data.ink, width: pad.data.pen, points: [at(pad, e)] };
    dot(pad.ctx, pad.current);
  });
  canvas.addEventListener("pointermove", (e) => {
    const stroke = pad.current;
    if (!stroke || e.pointerId !== stroke.id) return;
    for (const event of e.getCoalescedEvents ? e.getCoalescedEvents() : [e]) {
      stroke.points.push(at(pad, event));
      piece(pad.ctx, stroke, stroke.points.length - 1);
    }
  });
  const end = (e) => {
    const stroke = pad.current;
    if (!stroke || e.pointerId !== stroke.id) return;
    piece(pad.ctx, stroke, stroke.points.length);
    pad.current = null;
    pad.strokes.push(stroke);
    send(pad);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  pad.undo.addEventListener("click", () => { pad.strokes.pop(); repaint(pad); send(pad); });
  pad.clear.addEventListener("click", () => { pad.strokes = []; repaint(pad); send(pad); });
  return pad;
};

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let pad = pads.get(parentElement);
  const fresh = !pad;
  if (fresh) {
    pad = mount(parentElement);
    pads.set(parentElement, pad);
  }
  pad.setStateValue = setStateValue;
  pad.data = data;
  pad.canvas.setAttribute("aria-label", data.label);
  if (fresh || pad.canvas.width !== data.width || pad.canvas.height !== data.height) {
    pad.canvas.width = data.width;
    pad.canvas.height = data.height;
    repaint(pad);
  }
  return () => pads.delete(parentElement);
}
"""
