"""Corrections on the canvas page: "Right" or "Wrong, it was: 0 ... 9 / not a digit" under an answer, and the count.

One click stores the drawing through the API (POST /v1/feedback). A drawing is stored at most once: a callback that
fires again for it (the browser can resend a chip's value on a later rerun) finds it saved and does nothing. A failed
save gets fresh chips, so the same chip can be tried again; a new drawing gets fresh buttons.
"""

from __future__ import annotations

import hashlib
import html

import streamlit as st

from mnist_edge.webui.client import ApiClient, ApiError

NOT_A_DIGIT = "not a digit"
CHOICES = [*range(10), NOT_A_DIGIT]
SAVED = "feedback_saved"  # session key: {"digest": the drawing's, "line": what to show, "count": None if not stored}
REFRESH = "feedback_refresh"  # session key: a correction was stored, so the sidebar's count is stale


@st.cache_data(ttl=5, show_spinner=False)
def _stats(url: str, token: str | None) -> dict:
    return ApiClient(url=url, token=token).feedback_stats()  # an ApiError is raised, not cached


def _marker(state: str, **data: object) -> None:
    """What a browser test reads: data-state (saved, failed, ready) and the count."""
    attrs = " ".join(f'data-{k}="{html.escape(str(v))}"' for k, v in {"state": state, **data}.items())
    st.html(f'<div class="mnist-edge-feedback" {attrs}></div>')


def _stored(digest: str) -> bool:
    saved = st.session_state.get(SAVED) or {}
    return saved.get("digest") == digest and saved["count"] is not None


def _tries(digest: str) -> int:
    """How many saves of this drawing have failed: each renders its chips anew."""
    saved = st.session_state.get(SAVED) or {}
    return saved.get("tries", 0) if saved.get("digest") == digest else 0


def _save(client: ApiClient, image: bytes, label: int | None, answer: dict, digest: str) -> None:
    if _stored(digest):
        return
    try:
        count = client.feedback(image, label, answer)["count"]
    except ApiError as exc:
        st.session_state[SAVED] = {"digest": digest, "line": f"Not saved: {exc.message}", "count": None,
                                   "tries": _tries(digest) + 1}
        return
    noun = "correction" if count == 1 else "corrections"
    st.session_state[SAVED] = {"digest": digest, "line": f"Saved. {count} {noun} so far.", "count": count}
    st.session_state[REFRESH] = True
    _stats.clear()


def _save_choice(client: ApiClient, image: bytes, answer: dict, digest: str, key: str) -> None:
    choice = st.session_state[key]
    if choice is not None:
        _save(client, image, None if choice == NOT_A_DIGIT else choice, answer, digest)


def feedback_row(client: ApiClient, image: bytes, body: dict) -> None:
    """Under an answer: the two ways to mark it, or what became of the click."""
    if st.session_state.pop(REFRESH, False):
        st.rerun()  # the whole page, so the sidebar's count includes this one
    try:
        _stats(client.url, client.token)
    except ApiError as exc:
        if exc.status == 404:
            return  # the API stores no corrections (--no-feedback): nothing to offer
    digest = hashlib.sha256(image).hexdigest()[:16]
    saved = st.session_state.get(SAVED) or {}
    if _stored(digest):
        st.success(saved["line"], icon=":material/check:")
        _marker("saved", count=saved["count"])
        return
    answer = {key: body[key] for key in ("digit", "confidence", "is_digit", "digit_score", "backend")}
    right = body["digit"] if body["is_digit"] else None
    st.button("Right", key=f"right-{digest}", icon=":material/thumb_up:", on_click=_save,
              args=(client, image, right, answer, digest))
    key = f"wrong-{digest}-{_tries(digest)}"  # a failed save renders new chips, none of them chosen
    st.pills("Wrong, it was:", CHOICES, key=key, on_change=_save_choice, args=(client, image, answer, digest, key))
    if saved.get("digest") == digest:
        st.error(saved["line"])
        _marker("failed")
    else:
        _marker("ready")


def feedback_count(client: ApiClient) -> None:
    """The sidebar's line: how many corrections the API holds (nothing when it cannot say)."""
    try:
        stats = _stats(client.url, client.token)
    except ApiError as exc:
        if exc.status == 404:
            st.sidebar.caption("Corrections are off on this API.")
        return
    wrong = f" ({stats['corrected']} where the model was wrong)" if stats["corrected"] else ""
    st.sidebar.caption(f"Corrections stored: {stats['count']}{wrong}")
