"""code/inference.py at the edges of its input: every request gets a success or the project's 4xx.

The DLC's toolkit turns *any* exception from the hooks into a 400 carrying the exception's text,
so a hook must only ever raise what is written for the caller: an InputError naming the field
and what is allowed, or InternalError's fixed message (the cause is logged, never sent).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facts.embedding_api import (
    CONTENT_TYPES,
    INTERNAL_ERROR_MESSAGE,
    OPENAI_KEYS,
    PARAMETERS,
    InputError,
    InternalError,
)

NESTED_100K = b"[" * 100_000 + b"]" * 100_000
# A lone surrogate as a JSON escape: valid JSON, but no text a tokenizer can read.
LONE_SURROGATE = b'{"input": "a\\ud800b"}'


def outcome(inference, loaded, body, content_type, accept="application/json"):
    """The hooks in the toolkit's order: the answer, or the InputError they raise."""
    try:
        request = inference.input_fn(body, content_type)
        return inference.output_fn(inference.predict_fn(request, loaded), accept)
    except InputError as error:
        return error


def test_an_array_nested_100000_deep_is_a_400_about_nesting(inference, loaded):
    error = outcome(inference, loaded, NESTED_100K, "application/json")
    assert isinstance(error, InputError) and error.status == 400
    assert "nests JSON arrays or objects too deeply" in str(error)
    assert "recursion" not in str(error)


def test_an_array_nested_100000_deep_on_a_json_line_names_the_line(inference, loaded):
    error = outcome(inference, loaded, b'"fine"\n' + NESTED_100K, "application/jsonlines")
    assert isinstance(error, InputError) and str(error).startswith("line 2 nests")


@pytest.mark.parametrize("body", [LONE_SURROGATE, LONE_SURROGATE.decode()], ids=["bytes", "str"])
def test_a_lone_surrogate_escape_is_a_400_naming_the_field(inference, loaded, body):
    error = outcome(inference, loaded, body, "application/json")
    assert isinstance(error, InputError) and error.status == 400
    assert str(error).startswith('"input" holds a lone UTF-16 surrogate (\\ud800 at character 1)')


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b'{"inputs": ["ok", "\\udfff"]}', "application/json", '"inputs"[1]'),
        (b'{"inputs": "a", "parameters": {"prompt": "\\ud83d"}}', "application/json", '"prompt"'),
        (b'"ok"\n{"inputs": "\\ud800x"}\n', "application/jsonlines", "line 2"),
    ],
)
def test_lone_surrogates_elsewhere_are_400s_naming_where(
    inference, loaded, body, content_type, field
):
    error = outcome(inference, loaded, body, content_type)
    assert isinstance(error, InputError) and str(error).startswith(f"{field} holds a lone")


def test_a_surrogate_pair_escape_is_one_character_and_is_embedded(inference, loaded):
    answer = outcome(inference, loaded, b'{"input": "a\\ud83d\\ude00b"}', "application/json")
    assert isinstance(answer, str) and len(json.loads(answer)["data"]) == 1


def test_an_unexpected_failure_gives_the_fixed_message_and_logs_the_cause(
    inference, loaded, monkeypatch, caplog
):
    def fails(*args, **kwargs):
        raise RuntimeError("CUDA error at /opt/ml/model/secret.bin")

    monkeypatch.setattr(type(loaded), "embed", fails)
    request = inference.input_fn(b'{"inputs": "a"}', "application/json")
    with caplog.at_level(logging.ERROR), pytest.raises(InternalError) as raised:
        inference.predict_fn(request, loaded)
    assert str(raised.value) == INTERNAL_ERROR_MESSAGE and raised.value.status == 500
    assert "secret.bin" in caplog.text


# ---------------------------------------------------------------------------------------------
# Property: arbitrary JSON and bytes under each content type never escape as another exception.

KEYS = ("inputs", "parameters", "info", *OPENAI_KEYS, *PARAMETERS)
# Text from every plane, and text of what tokenizers and JSON find hard: lone surrogates
# (Hypothesis leaves them out by default), NUL, a combining mark, a zero-width space.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=24) | st.text(
    st.sampled_from("a \ud800\udfff\x00\u0301\u200b"), min_size=1, max_size=8
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS) | ANY_TEXT, VALUES, max_size=4)
REQUESTS = st.fixed_dictionaries(
    {"inputs": st.one_of(ANY_TEXT, st.lists(ANY_TEXT, min_size=1, max_size=3), VALUES)},
    optional={"parameters": st.dictionaries(st.sampled_from(PARAMETERS), VALUES, max_size=3)},
)


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, array: bool, under_inputs: bool) -> bytes:
    """Valid JSON `depth` arrays or objects deep, bare or as the value of "inputs"."""
    body = b"[" * depth + b"]" * depth if array else b'{"a": ' * depth + b"1" + b"}" * depth
    return b'{"inputs": ' + body + b"}" if under_inputs else body


# Nested from one level to far past the decoder's recursion limit.
DEEP = st.builds(_nested, st.integers(1, 200_000), st.booleans(), st.booleans())
BODIES = st.one_of(
    st.binary(max_size=64),
    DEEP,
    VALUES.map(_json),
    DOCUMENTS.map(_json),
    REQUESTS.map(_json),
    st.lists(VALUES | REQUESTS, min_size=1, max_size=4).map(
        lambda lines: b"\n".join(_json(line) for line in lines)
    ),
)
CONTENT = st.sampled_from([*CONTENT_TYPES, None, "text/csv", "application/json; charset=utf-8"])
ACCEPT = st.sampled_from([None, "*/*", "application/json", "application/jsonlines", "text/csv"])


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(body=BODIES, content_type=CONTENT, accept=ACCEPT)
def test_every_body_is_answered_or_refused_with_the_projects_4xx(
    inference, loaded, body, content_type, accept
):
    result = outcome(inference, loaded, body, content_type, accept)
    if isinstance(result, InputError):
        assert 400 <= result.status < 500, result
    else:
        assert isinstance(result, str)


@pytest.fixture(scope="module")
def poisoned(inference, tmp_path_factory):
    """The reference model with one word's embedding row set to NaN: real NaN from that word."""
    from safetensors.numpy import load_file, save_file

    from tests.support.models import copy_model

    folder = copy_model(tmp_path_factory.mktemp("poisoned") / "model")
    weights = load_file(str(folder / "model.safetensors"))
    word = inference.load_tokenizer(str(folder)).convert_tokens_to_ids("zebra")
    weights["embeddings.word_embeddings.weight"][word] = float("nan")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return inference.model_fn(str(folder))


def test_a_text_the_model_answers_with_nan_is_a_422_naming_it(inference, poisoned):
    body = json.dumps({"inputs": ["a horse", "a zebra", "a cow"]})
    error = outcome(inference, poisoned, body, "application/json")
    assert isinstance(error, InputError) and error.status == 422
    expected = "the model gave NaN or infinity for 1 of 3 inputs (the first: input 1)"
    assert str(error).startswith(expected)


def test_texts_without_the_nan_word_are_answered(inference, poisoned):
    answer = json.loads(outcome(inference, poisoned, '{"inputs": "a horse"}', "application/json"))
    assert len(answer["embeddings"][0]) == 384


def test_vectors_whose_squares_overflow_float32_are_finite_and_answered():
    from tests.support.models import container_module

    encoder = container_module("encoder")
    huge = np.full((2, 384), 1e30, dtype=np.float32)
    with np.errstate(over="ignore"):
        encoder._check_finite(huge)  # no InputError: every value is a number
