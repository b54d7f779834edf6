"""docs/limits.md names every limit the server has, with the defaults the code has: the table cannot drift."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import orjson
import pytest
from gunicorn.config import Config as GunicornConfig
from waitress.adjustments import Adjustments

from mnist_edge.runtime.config import SOURCES, ServeConfig, env_name
from mnist_edge.runtime.decode import MAX_PIXELS
from mnist_edge.runtime.feedback import BUSY_TIMEOUT_S, MAX_PNG_BYTES
from mnist_edge.runtime.api.api_feedback import MAX_ANSWER_BYTES
from mnist_edge.runtime.api.reading_worker import HEAD_LIMIT
from mnist_edge.runtime.api.workers import GRACEFUL_SECONDS

DOC = Path(__file__).resolve().parent.parent / "docs" / "limits.md"
DEFAULTS = ServeConfig()
JSON_DEPTH = 1024  # orjson's; checked below by parsing

# ServeConfig fields that bound what a request or the server may take, and the number the doc must quote for each.
LIMIT_FIELDS = {
    "max_body_bytes": DEFAULTS.max_body_bytes / (1024 * 1024),  # quoted in MB, as the flag takes it
    "max_batch": DEFAULTS.max_batch,
    "max_digits": DEFAULTS.max_digits,
    "max_image_pixels": DEFAULTS.max_image_pixels or MAX_PIXELS,
    "read_timeout": DEFAULTS.read_timeout,
    "workers": 1,  # None: one per CPU core
    "threads": DEFAULTS.threads,
    "feedback_max_bytes": DEFAULTS.feedback_max_bytes / (1024 * 1024),  # quoted in MB, as the flag takes it
}
GUNICORN = GunicornConfig().settings
CODE = {  # "code: ..." in the Set-by column -> the value the code has
    "workers.GRACEFUL_SECONDS": GRACEFUL_SECONDS,
    "orjson": JSON_DEPTH,
    "reading_worker.HEAD_LIMIT": HEAD_LIMIT,
    "feedback.MAX_PNG_BYTES": MAX_PNG_BYTES,
    "api_feedback.MAX_ANSWER_BYTES": MAX_ANSWER_BYTES,
    "feedback.BUSY_TIMEOUT_S": BUSY_TIMEOUT_S,
    **{f"gunicorn {name}": GUNICORN[name].default for name in
       ("limit_request_line", "limit_request_fields", "limit_request_field_size", "keepalive", "worker_connections")},
    "waitress max_request_header_size": Adjustments.max_request_header_size,
}


def _rows() -> list[dict[str, str]]:
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


ROWS = _rows()


def _quoted_default(row: dict[str, str]) -> float:
    return float(re.match(r"`([\d.]+)`", row["Default"]).group(1))


def _row_set_by(text: str) -> dict[str, str]:
    found = [row for row in ROWS if text in row["Set by"]]
    assert len(found) == 1, f"{text}: {len(found)} rows in {DOC.name}"
    return found[0]


def test_every_limit_like_setting_is_listed_as_one():
    limit_like = {f.name for f in fields(ServeConfig) if f.name.startswith("max_") or f.name.endswith("_timeout")}
    assert limit_like <= set(LIMIT_FIELDS), f"add {limit_like - set(LIMIT_FIELDS)} to LIMIT_FIELDS and {DOC.name}"


@pytest.mark.parametrize("name", sorted(LIMIT_FIELDS))
def test_a_setting_row_names_its_flag_and_variable_and_quotes_the_default(name):
    row = _row_set_by(f"`{SOURCES[name][0]}`")
    assert f"`{env_name(name)}`" in row["Set by"]
    assert _quoted_default(row) == LIMIT_FIELDS[name]
    assert row["Over it"]


@pytest.mark.parametrize("name", sorted(CODE))
def test_a_fixed_limit_row_quotes_the_value_in_the_code(name):
    found = [row for row in ROWS if row["Set by"].replace("`", "") == f"code: {name}"]
    assert len(found) == 1, f"code: {name}: {len(found)} rows in {DOC.name}"
    assert _quoted_default(found[0]) == CODE[name]


def test_every_row_is_checked_here():
    checked = [row for row in ROWS if any(f"`{SOURCES[name][0]}`" in row["Set by"] for name in LIMIT_FIELDS)
               or row["Set by"].startswith("code:")]
    assert len(checked) == len(ROWS) == len(LIMIT_FIELDS) + len(CODE)


def test_orjson_refuses_json_nested_deeper_than_the_doc_says():
    orjson.loads("[" * JSON_DEPTH + "]" * JSON_DEPTH)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads("[" * (JSON_DEPTH + 1) + "]" * (JSON_DEPTH + 1))
