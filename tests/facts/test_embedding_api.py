"""The embedding API contract on its own: request shapes, response shapes, encodings, limits."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from facts.embedding_api import (
    EmbeddingOptions,
    EmbeddingRequest,
    InputError,
    ResponseError,
    Usage,
    max_vectors,
    parse_body,
    parse_document,
    read_response,
    render_response,
)

VECTORS = [[0.25, -1.5, 3.0e-5], [1.0, 0.0, -0.125]]


def test_native_defaults_keep_existing_requests_working():
    request = parse_document({"inputs": ["a"], "parameters": {"normalize": True, "truncate": True}})
    assert request == EmbeddingRequest(("a",), EmbeddingOptions(normalize=True), "native")


def test_truncation_direction_is_read_case_insensitively_as_tei_sends_it():
    request = parse_document({"inputs": "a", "parameters": {"truncation_direction": "Left"}})
    assert request.options.truncation_direction == "left"


def test_options_serialize_back_to_only_what_was_set():
    options = EmbeddingOptions(prompt_name="query", dimensions=64, encoding_format="base64")
    document = {"inputs": ["a"], "parameters": options.as_parameters()}
    assert document["parameters"] == {
        "prompt_name": "query",
        "dimensions": 64,
        "encoding_format": "base64",
    }
    assert parse_document(document).options == options


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"inputs": "a", "parameters": {"encoding_format": "binary"}}, "['float', 'base64']"),
        ({"inputs": "a", "parameters": {"dimensions": True}}, "positive integer"),
        ({"inputs": "a", "parameters": {"prompt": 5}}, '"prompt" must be a string'),
        ({"input": "a", "encoding_format": "hex"}, "['float', 'base64']"),
        ({"input": [1, 2, 3]}, "token ids"),
        ({"input": [[1, 2], []]}, "token ids"),
        ({"inputs": [["a"], ["b"]]}, '"inputs"[0] must be a string, got an array'),
        ({"input": [[1, 2], ["b"]]}, '"input"[0] must be a string, got an array'),
        ({"info": 1}, 'exactly {"info": true}'),
        ({"info": 1.0}, 'exactly {"info": true}'),
        ({"input": "a", "user": 5}, '"user" must be a string'),
        ({"info": True, "inputs": "a"}, 'exactly {"info": true}'),
    ],
)
def test_bad_options_are_refused_with_what_is_allowed(document, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_document(document)


def test_body_size_content_type_and_json_errors_carry_their_status():
    with pytest.raises(InputError) as too_big:
        parse_body(b"x" * 11, "application/json", max_bytes=10)
    assert too_big.value.status == 413
    with pytest.raises(InputError) as wrong_type:
        parse_body(b"{}", "text/csv", max_bytes=10)
    assert wrong_type.value.status == 415


def test_base64_is_little_endian_float32_as_openai_sends_it():
    request = EmbeddingRequest(("a", "b"), EmbeddingOptions(encoding_format="base64"))
    document = json.loads(render_response(request, VECTORS, "m", Usage(5)))
    raw = base64.b64decode(document["embeddings"][0])
    assert struct.unpack("<3f", raw) == tuple(struct.unpack("<3f", struct.pack("<3f", *VECTORS[0])))


@pytest.mark.parametrize("shape", ["native", "openai"])
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_every_response_reads_back_to_the_same_float32_vectors(shape, encoding):
    request = EmbeddingRequest(("a", "b"), EmbeddingOptions(encoding_format=encoding), shape)
    body = render_response(request, VECTORS, "org/model", Usage(7))
    decoded = read_response(json.loads(body), expected=2)

    def float32(vectors):
        return [struct.unpack("<3f", struct.pack("<3f", *vector)) for vector in vectors]

    assert float32(decoded.vectors) == float32(VECTORS)
    assert (decoded.model, decoded.dimensions, decoded.prompt_tokens) == ("org/model", 3, 7)


def test_openai_response_has_the_shape_the_sdk_reads():
    request = EmbeddingRequest(("a", "b"), shape="openai")
    document = json.loads(render_response(request, VECTORS, "m", Usage(4)))
    assert document["object"] == "list"
    assert [(item["object"], item["index"]) for item in document["data"]] == [
        ("embedding", 0),
        ("embedding", 1),
    ]
    assert document["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_a_response_with_the_wrong_vector_count_is_not_read():
    request = EmbeddingRequest(("a", "b"))
    with pytest.raises(ResponseError, match="2 vectors for 3 texts"):
        read_response(json.loads(render_response(request, VECTORS, "m", Usage(1))), expected=3)


@pytest.mark.parametrize("dimensions", [384, 768, 1024, 4096])
def test_the_stated_limit_fits_the_worst_case_response(dimensions):
    for encoding in ("float", "base64"):
        count = max_vectors(dimensions, encoding, 4_000_000)
        worst = [[-1.23456789e-05] * dimensions] * count
        request = EmbeddingRequest(("a",) * count, EmbeddingOptions(encoding_format=encoding))
        assert len(render_response(request, worst, "org/" + "m" * 100, Usage(10**9))) <= 4_000_000
    assert max_vectors(dimensions, "base64", 4_000_000) > 2 * max_vectors(
        dimensions, "float", 4_000_000
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"inputs": None}, "got null"),
        ({"inputs": "a", "parameters": {"normalize": "true"}}, 'must be true or false, got "true"'),
        ({"inputs": "a", "parameters": {"dimensions": True}}, "positive integer, got true"),
        ({"input": "a", "encoding_format": {"a": 1}}, '"encoding_format" is {"a": 1}; allowed'),
        ({"input": "a", "user": 7}, '"user" must be a string, got a number'),
    ],
)
def test_a_refusal_names_what_was_sent_in_json_terms(body, says):
    with pytest.raises(InputError) as refused:
        parse_document(body)
    assert says in str(refused.value)
    assert "NoneType" not in str(refused.value) and "dict" not in str(refused.value)


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_an_empty_json_body_is_named_with_the_request_to_send(body):
    with pytest.raises(InputError) as refused:
        parse_body(body, "application/json", 6_000_000)
    assert str(refused.value).startswith('request body is empty: send JSON {"inputs": ["text"')
