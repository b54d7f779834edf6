"""Fuzzing: hypothesis properties for preprocess and the v2 decoder, schemathesis on the live OpenAPI document."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.api import api_v2, v2_binary
from mnist_edge.runtime.errors import MnistEdgeError
from mnist_edge.runtime.preprocess import find_ink, preprocess
from mnist_edge.runtime.segment import choose, segment

# Bounded so CI stays fast: each property and each API operation gets this many generated cases.
EXAMPLES = 60
API_EXAMPLES = 25
ANY_DTYPE = st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(), hnp.unicode_string_dtypes())


def _valid_input(batch: np.ndarray) -> None:
    assert batch.shape == (1, 28, 28, 1) and batch.dtype == np.float32
    assert np.isfinite(batch).all() and batch.min() >= 0 and batch.max() <= 1


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_preprocess_any_array_gives_a_valid_input_or_a_typed_error(image):
    try:
        batch = preprocess(image)
    except MnistEdgeError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return
    _valid_input(batch)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.binary(max_size=2048))
def test_preprocess_any_bytes_give_a_valid_input_or_a_typed_error(data):
    try:
        batch = preprocess(data)
    except MnistEdgeError as exc:
        assert 400 <= exc.status < 500
        return
    _valid_input(batch)


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_segment_any_array_gives_characters_inside_it_or_a_typed_error(image):
    try:
        ink = find_ink(image, line=True)
        found = segment(ink, limit=8)
    except MnistEdgeError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return
    assert found.atoms >= 1 and all(0 <= i < j <= found.atoms for i, j, _ in found.edges)
    for piece in found.pieces:
        _valid_input(piece.image[None])
        x, y, w, h = piece.box
        assert 0 <= x < x + w <= ink.shape[1] and 0 <= y < y + h <= ink.shape[0]
    chosen = choose(found, np.random.default_rng(0).random(len(found.pieces)))
    spans = {k: (i, j) for i, j, k in found.edges}
    assert spans[chosen[0]][0] == 0 and spans[chosen[-1]][1] == found.atoms  # a whole reading, left to right
    assert all(spans[a][1] == spans[b][0] for a, b in zip(chosen, chosen[1:]))


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.binary(max_size=2048))
def test_read_any_bytes_give_a_number_or_a_typed_error(app, data):
    response = app.test_client().post("/v1/read", data=data, content_type="application/octet-stream")
    if response.status_code != 200:
        assert 400 <= response.status_code < 500 and response.json["error"]["code"]
        return
    body = response.json
    assert body["number"] == "".join(str(item["digit"]) for item in body["digits"] if item["is_digit"])


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=False)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
TENSOR_KEYS = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.just("image"), st.just("image"), JSON_VALUES), "datatype": st.one_of(st.sampled_from(["FP32", "UINT8", "INT64"]), JSON_VALUES),
    "shape": st.one_of(st.lists(st.integers(-2, 70), max_size=5), st.sampled_from([[1, 28, 28], [2, 28, 28, 1]])),
    "data": JSON_VALUES, "parameters": st.one_of(JSON_VALUES, st.fixed_dictionaries(
        {"binary_data_size": st.one_of(st.integers(-1, 4000), JSON_VALUES)}))})


@settings(max_examples=4 * EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.one_of(st.lists(TENSOR_KEYS, min_size=1, max_size=1), st.lists(TENSOR_KEYS, max_size=2), JSON_VALUES),
       tail=st.binary(max_size=3200))
def test_the_v2_decoder_gives_a_batch_or_a_typed_error(app, inputs, tail):
    with app.app_context():
        try:
            batch = api_v2._tensor({"inputs": inputs}, memoryview(tail))
        except MnistEdgeError as exc:
            assert 400 <= exc.status < 500 and exc.message
            return
    assert batch.dtype == np.float32 and batch.shape[1:] == (28, 28, 1) and 1 <= len(batch) <= 64
    assert np.isfinite(batch).all()


@settings(max_examples=EXAMPLES // 2, deadline=None, database=None)
@given(pixels=hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(28), st.just(28))), binary=st.booleans())
def test_the_v2_decoder_returns_exactly_the_tensor_sent(app, pixels, binary):
    tensor = {"name": "image", "shape": list(pixels.shape), "datatype": "UINT8"}
    if binary:
        tensor["parameters"] = {"binary_data_size": pixels.size}
        header, tail = v2_binary.split(orjson.dumps({"inputs": [tensor]}) + pixels.tobytes(),
                                       str(len(orjson.dumps({"inputs": [tensor]}))))
        body = orjson.loads(bytes(header))
    else:
        body, tail = {"inputs": [{**tensor, "data": pixels.ravel().tolist()}]}, memoryview(b"")
    with app.app_context():
        batch = api_v2._tensor(body, tail)
    assert math.prod(batch.shape) == pixels.size
    np.testing.assert_array_equal(batch[..., 0], pixels.astype(np.float32) / 255)


# Schema-valid requests the API may still refuse, because no JSON schema can say it: the image must decode and have
# ink, pixel rows must be of equal length, and a v2 tensor's value count must match its shape. Any other 4xx on a
# request the document allows means the document is missing a constraint.
SEMANTIC_V1 = {"bad_image", "blank_image"}
SEMANTIC_V2 = ("values; shape",)
RAGGED = "rectangular"


def _semantic_refusal(response) -> bool:
    try:
        error = response.json()["error"]
    except ValueError:
        return False
    if isinstance(error, str):
        return any(text in error for text in SEMANTIC_V2)
    return error["code"] in SEMANTIC_V1 or (error["code"] == "malformed_request" and RAGGED in error["message"])


def positive_data_accepted_unless_semantic(ctx, response, case):
    """schemathesis' positive_data_acceptance, minus the refusals a schema cannot express."""
    if response.status_code == 400 and _semantic_refusal(response):
        return None
    return positive_data_acceptance(ctx, response, case)


def negative_data_rejected_or_too_large(ctx, response, case):
    """schemathesis' negative_data_rejection, which does not count 413 (a batch over the limit) as a rejection."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


NARROWED = {positive_data_acceptance: positive_data_accepted_unless_semantic,
            negative_data_rejection: negative_data_rejected_or_too_large}


def all_checks() -> list:
    """Every built-in check (the CLI's `--checks all`), with the two above narrowed as they say."""
    load_all_checks()
    return [NARROWED.get(check, check) for check in CHECKS.get_all() if not is_check_class(check)]


@pytest.fixture(scope="module")
def live_schema(app):
    """The live /openapi.json of the shipped-models app behind waitress."""
    server = start_background(app)
    yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    server.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_the_api_keeps_the_promises_of_its_openapi_document(app, live_schema, mode):
    checks, statuses, registry = all_checks(), [], app.extensions["mnist_edge"].registry
    # Real model names and versions, or nearly every v2 case would stop at a 404 before the code worth fuzzing.
    known = {"name": registry.default, "version": api_v2.model_version(registry.get())}
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        path = {key: value for key, value in known.items() if "{" + key + "}" in operation.path}

        @settings(max_examples=API_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
        def call(case):
            response = case.call_and_validate(checks=checks, timeout=30)
            statuses.append(response.status_code)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break in a route without parameters or body
    print(f"schemathesis {mode.value}: {len(statuses)} cases on {len(operations)} operations, "
          f"statuses {dict(sorted(Counter(statuses).items()))}")
    assert statuses and max(statuses) < 500
